"""richc's glue to :mod:`lxcfs_integration`: host settings, lxcfs at container start, the
spec's view mounts, health for ``inspect`` and ``richc lxcfs status``, and recovery.

The host settings live in ``/etc/richc/richc.yaml`` (under ``--root``)::

    lxcfs: true                  # the default of new containers' `lxcfs` setting, when
                                 # neither --lxcfs/--no-lxcfs nor their config file says
    lxcfs_home: /var/lib/lxcfs   # default: ROOT/var/lib/lxcfs, so a test root never
                                 # touches the host's lxcfs
    lxcfs_required: false        # true: a container that wants views fails to start
                                 # without them; false: it starts with a warning
    lxcfs_options: [-l]          # extra lxcfs flags when richc starts it

What was bound at start is recorded in the container's state (``state.lxcfs``), so
health and remount (richc.lxcfs_ops) work from the same list the runtime mounted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from richc import config as cfg
from richc.context import Context
from richc.errors import ConfigError, HostUnsupported, RichcError
from richc.hostres import BaseResource, Contribution
from richc.lock import locked
from richc.paths import HostPaths
from richc.spec import Mount
from richc.state import LxcfsRecord, State, ViewRecord, load
from richc.store import ContainerDir, write_atomic

if TYPE_CHECKING:  # imported where used: a stop only reads the views its start recorded
    import lxcfs_integration as li

log = logging.getLogger("richc")

# The container-side view of a healthy lxcfs is checked with one real read (meminfo), not
# one per view: `richc list` shows health for every container and an lxcfs read costs ~0.5 ms.
QUICK_PROBE = "/proc/meminfo"
# In run_dir: the record (as prepare makes it) of every view lxcfs served at the last start,
# which create renders a config for.
LAST_VIEWS = "views.json"


@dataclass(frozen=True)
class LxcfsSettings:
    home: Path
    required: bool = False
    options: tuple[str, ...] = ()
    default_enabled: bool = True  # `lxcfs:` in richc.yaml: what `create` gives a container


def settings(paths: HostPaths) -> LxcfsSettings:
    """The host's lxcfs settings from richc.yaml; absent keys take their defaults."""
    data: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError):
        text = paths.host_config.read_text()
        import yaml  # only when the host has a richc.yaml: most do not

        loaded = yaml.safe_load(text)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(str(paths.host_config), loaded, "expected a mapping")
        data = loaded or {}
    home = data.get("lxcfs_home") or paths.root / "var/lib/lxcfs"
    if not os.path.isabs(str(home)):
        raise ConfigError("lxcfs_home", home, "expected an absolute path")
    required = data.get("lxcfs_required", False)
    if not isinstance(required, bool):
        raise ConfigError("lxcfs_required", required, "expected true or false")
    options = data.get("lxcfs_options", [])
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise ConfigError("lxcfs_options", options, "expected a list of lxcfs flags")
    default_enabled = data.get("lxcfs", True)
    if not isinstance(default_enabled, bool):
        raise ConfigError("lxcfs", default_enabled, "expected true or false")
    return LxcfsSettings(Path(str(home)), required, tuple(options), default_enabled)


def with_host_default(paths: HostPaths, data: dict[str, Any]) -> dict[str, Any]:
    """*data* (a container's merged flags and config file) with the host's ``lxcfs:`` default
    filled in when neither set it; create records the result, so a later change of the host
    default leaves existing containers as they were."""
    if data.get("lxcfs") is not None:
        return data
    return {**data, "lxcfs": settings(paths).default_enabled}


def run_dir(paths: HostPaths) -> Path:
    """Where richc keeps the pid file and log of the lxcfs it started."""
    return paths.lxcfs_run


def wrap_error(exc: li.LxcfsError | OSError) -> RichcError:
    import lxcfs_integration as li

    if isinstance(exc, li.LxcfsError):
        return HostUnsupported(exc.message, hint=exc.hint)
    return HostUnsupported(f"lxcfs: {exc}")


def ensure_serving(paths: HostPaths) -> tuple[li.LxcfsProcess, bool]:
    """Make the configured home serve (starting or restarting lxcfs); serialised on a lock so
    two `richc start` never race two lxcfs onto one home."""
    import lxcfs_integration as li

    conf = settings(paths)
    rdir = run_dir(paths)
    with locked(rdir / "lxcfs.lock", "lxcfs"):
        try:
            return li.ensure(conf.home, rdir, options=conf.options)
        except (li.LxcfsError, OSError) as exc:
            raise wrap_error(exc) from exc


# -- at container start ---------------------------------------------------------------


def view_record(view: li.View) -> ViewRecord:
    return ViewRecord(source=str(view.source), target=view.target, kind=view.kind.value)


def _view_from_record(data: ViewRecord) -> li.View:
    import lxcfs_integration as li

    return li.View(Path(data.source), data.target, li.ViewKind(data.kind))


def views_for(runtime: str, views: Sequence[li.View]) -> tuple[li.View, ...]:
    """The views a container on *runtime* gets. runc refuses mounts under /proc other than
    lxcfs's classic files, so its bundle leaves out the rest (``/proc/pressure/*``); the
    recorded list, health and remount must leave them out as well, or remount would attach
    views that start never had and health would miss them on every check."""
    if runtime == "runc":
        return tuple(v for v in views if v.oci_supported())
    return tuple(views)


def expected_record(ctx: Context, config: cfg.ContainerConfig, state: State) -> LxcfsRecord | None:
    """What :func:`prepare` will most likely record at the next start: the record of the
    views lxcfs served at the last start on this host (:data:`LAST_VIEWS`). None when no
    start has recorded any. Changes nothing, and checks no mount: asking lxcfs itself
    costs ~12 ms, and a wrong guess only costs the start a render (the caller's use)."""
    if not config.lxcfs:
        return LxcfsRecord(enabled=False)
    try:
        last = load(LxcfsRecord, json.loads((run_dir(ctx.paths) / LAST_VIEWS).read_bytes()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if last.home != str(settings(ctx.paths).home) or not last.views:
        return None
    if state.runtime == "lxc":
        return last  # lxc binds every view; the file is that record
    return _record(
        Path(last.home), views_for(state.runtime, tuple(map(_view_from_record, last.views)))
    )


def _record(home: Path, views: Sequence[li.View]) -> LxcfsRecord:
    """The ``lxcfs`` record of a container's state: what :func:`prepare` bound."""
    return LxcfsRecord(enabled=True, home=str(home), views=tuple(map(view_record, views)))


def _remember(paths: HostPaths, record: LxcfsRecord) -> None:
    """Keep *record* of everything lxcfs serves, for :func:`expected_record`; rewritten only
    when it changed. Best effort: losing it only costs a create its render ahead."""
    text = json.dumps(dataclasses.asdict(record))
    path = run_dir(paths) / LAST_VIEWS
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return
    with contextlib.suppress(OSError):
        write_atomic(path, text, durable=False)


def prepare(ctx: Context, config: cfg.ContainerConfig, state: State) -> None:
    """Before a start: make lxcfs serve and record the views to bind in *state*.

    When lxcfs cannot serve, the container starts without views and a warning, unless the
    host config says ``lxcfs_required: true``.
    """
    import lxcfs_integration as li

    if not config.lxcfs:
        state.lxcfs = LxcfsRecord(enabled=False)
        return
    conf = settings(ctx.paths)
    try:
        ensure_serving(ctx.paths)
        served = li.compute_views(conf.home)
        _remember(ctx.paths, _record(conf.home, served))
        views = views_for(state.runtime, served)
        if not views:
            raise li.LxcfsError(f"lxcfs at {conf.home} offers no views")
    except (RichcError, li.LxcfsError) as exc:
        message = exc.message
        if conf.required:
            raise HostUnsupported(
                f"{config.name} needs lxcfs views, but {message}",
                hint="fix lxcfs (see `richc lxcfs status`), or set lxcfs_required: false in "
                f"{ctx.paths.host_config}, or create the container with --no-lxcfs",
            ) from exc
        log.warning(
            "warning: lxcfs is unavailable (%s); %s starts without /proc views and sees the "
            "host's memory and CPUs",
            message,
            config.name,
        )
        state.lxcfs = _record(conf.home, ())
        return
    state.lxcfs = _record(conf.home, views)


def recorded_views(state: State) -> tuple[li.View, ...]:
    views = state.lxcfs.views if state.lxcfs is not None else ()
    return tuple(_view_from_record(v) for v in views)


def mounts(state: State) -> tuple[Mount, ...]:
    """The spec's bind mounts for the views recorded by :func:`prepare` (pure).

    Read straight from the record, not through :func:`recorded_views`: every stop builds
    the spec, and this keeps lxcfs_integration out of it."""
    views = state.lxcfs.views if state.lxcfs is not None else ()
    return tuple(Mount(source=v.source, target=v.target, kind=v.kind) for v in views)


# -- health ------------------------------------------------------------------------------


def quick_healthy(state: State, pid: int | None) -> bool | None:
    """For inspect/list: None when views do not apply (stopped, disabled), else whether every
    recorded view is the top mount in the container and meminfo answers."""
    import lxcfs_integration as li
    from lxcfs_integration import health as li_health
    from lxcfs_integration import mountinfo as li_mountinfo

    if pid is None or state.lxcfs is None or not state.lxcfs.enabled:
        return None
    views = recorded_views(state)
    if not views:
        return False
    try:
        entries = li_mountinfo.read(pid)
    except OSError:
        return None
    for view in views:
        top = li_mountinfo.top_at(entries, view.target)
        if top is None or not top.is_lxcfs:
            return False
    probe = next((v for v in views if v.target == QUICK_PROBE), views[0])
    root = Path(f"/proc/{pid}/root")
    error = li_health.try_read(
        root / probe.target.lstrip("/"), directory=probe.kind is li.ViewKind.DIR
    )
    return error is None


def stop_started(paths: HostPaths) -> bool:
    """Stop the lxcfs richc started for this root (found by its pid file); True if one was."""
    import lxcfs_integration as li
    from lxcfs_integration import daemon as li_daemon

    conf = settings(paths)
    rdir = run_dir(paths)
    with locked(rdir / "lxcfs.lock", "lxcfs"):
        pid = li_daemon.read_pidfile(li_daemon.pidfile_in(rdir), conf.home)
        if pid is None:
            return False
        process = li.LxcfsProcess(conf.home, li.Manager.SPAWNED, pid, li_daemon.pidfile_in(rdir))
        try:
            li.stop(process)
        except (li.LxcfsError, OSError) as exc:
            raise wrap_error(exc) from exc
    return True


def release_if_unused(ctx: Context) -> None:
    """After ``rm``: with no container left in the store, stop the lxcfs richc started for
    it, so a throwaway --root (tests, benchmarks) leaves no daemon or FUSE mount behind.
    A systemd-managed or foreign lxcfs is never touched."""
    if ctx.store.names() or not run_dir(ctx.paths).is_dir():
        return
    try:
        if stop_started(ctx.paths):
            log.debug("lxcfs: stopped, no container is left")
    except RichcError as exc:
        log.warning("warning: could not stop lxcfs: %s", exc.message)


class LxcfsResource(BaseResource):
    """lxcfs's /proc views: lxcfs made to serve before each start, the views bound by the
    runtime from the record, the lxcfs richc started stopped with the last container."""

    name = "lxcfs"

    def prepare(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
    ) -> None:
        prepare(ctx, config, state)

    def contribute(self, config: cfg.ContainerConfig, state: State) -> Contribution:
        return Contribution(mounts=mounts(state))

    def describe(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig | None, state: State
    ) -> Any:
        from richc.procs import live_pid

        enabled = config.lxcfs if config is not None else False
        return {"enabled": enabled, "healthy": quick_healthy(state, live_pid(state.init_run))}


RESOURCE = LxcfsResource()
