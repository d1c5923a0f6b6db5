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

What was bound at start is recorded in the container's state (``extra["lxcfs"]``), so
health and remount work from the same list the runtime mounted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from richc import config as cfg
from richc.context import Context
from richc.errors import ConfigError, HostUnsupported, NotFound, RichcError
from richc.lock import locked
from richc.paths import HostPaths
from richc.spec import Mount
from richc.store import ContainerDir, State, write_atomic

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
    return paths.run / "lxcfs"


def _wrap(exc: li.LxcfsError | OSError) -> RichcError:
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
            raise _wrap(exc) from exc


# -- at container start ---------------------------------------------------------------


def _view_to_dict(view: li.View) -> dict[str, str]:
    return {"source": str(view.source), "target": view.target, "kind": view.kind.value}


def _view_from_dict(data: dict[str, str]) -> li.View:
    import lxcfs_integration as li

    return li.View(Path(data["source"]), data["target"], li.ViewKind(data["kind"]))


def views_for(runtime: str, views: Sequence[li.View]) -> tuple[li.View, ...]:
    """The views a container on *runtime* gets. runc refuses mounts under /proc other than
    lxcfs's classic files, so its bundle leaves out the rest (``/proc/pressure/*``); the
    recorded list, health and remount must leave them out as well, or remount would attach
    views that start never had and health would miss them on every check."""
    if runtime == "runc":
        return tuple(v for v in views if v.oci_supported())
    return tuple(views)


def expected_record(
    ctx: Context, config: cfg.ContainerConfig, state: State
) -> dict[str, Any] | None:
    """What :func:`prepare` will most likely record at the next start: the record of the
    views lxcfs served at the last start on this host (:data:`LAST_VIEWS`). None when no
    start has recorded any. Changes nothing, and checks no mount: asking lxcfs itself
    costs ~12 ms, and a wrong guess only costs the start a render (the caller's use)."""
    if not config.lxcfs:
        return {"enabled": False}
    try:
        last = json.loads((run_dir(ctx.paths) / LAST_VIEWS).read_bytes())
        served = last["views"] if last["home"] == str(settings(ctx.paths).home) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(served, list) or not served:
        return None
    if state.runtime == "lxc":
        return dict(last)  # lxc binds every view; the file is that record
    return _record(
        Path(last["home"]), views_for(state.runtime, tuple(map(_view_from_dict, served)))
    )


def _record(home: Path, views: Sequence[li.View]) -> dict[str, Any]:
    """The ``lxcfs`` entry of a container's state: what :func:`prepare` bound."""
    return {"enabled": True, "home": str(home), "views": [_view_to_dict(v) for v in views]}


def _remember(paths: HostPaths, record: dict[str, Any]) -> None:
    """Keep *record* of everything lxcfs serves, for :func:`expected_record`; rewritten only
    when it changed. Best effort: losing it only costs a create its render ahead."""
    text = json.dumps(record)
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
        state.extra["lxcfs"] = {"enabled": False}
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
        state.extra["lxcfs"] = _record(conf.home, ())
        return
    state.extra["lxcfs"] = _record(conf.home, views)


def recorded_views(state: State) -> tuple[li.View, ...]:
    data = state.extra.get("lxcfs") or {}
    return tuple(_view_from_dict(v) for v in data.get("views", []))


def mounts(state: State) -> tuple[Mount, ...]:
    """The spec's bind mounts for the views recorded by :func:`prepare` (pure).

    Read straight from the record, not through :func:`recorded_views`: every stop builds
    the spec, and this keeps lxcfs_integration out of it."""
    data = state.extra.get("lxcfs") or {}
    return tuple(
        Mount(source=str(Path(v["source"])), target=v["target"], kind=v["kind"], optional=True)
        for v in data.get("views", [])
    )


# -- health ------------------------------------------------------------------------------


def quick_healthy(state: State, pid: int | None) -> bool | None:
    """For inspect/list: None when views do not apply (stopped, disabled), else whether every
    recorded view is the top mount in the container and meminfo answers."""
    import lxcfs_integration as li
    from lxcfs_integration import health as li_health
    from lxcfs_integration import mountinfo as li_mountinfo

    data = state.extra.get("lxcfs") or {}
    if pid is None or not data.get("enabled"):
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


@dataclass(frozen=True)
class Target:
    """A running container that uses lxcfs: what remount and status work on."""

    cdir: ContainerDir
    state: State
    pid: int


def running_targets(ctx: Context, names: Sequence[str] = ()) -> list[Target]:
    """Running containers with lxcfs enabled; named ones must exist, run and use lxcfs."""
    from richc.info import live_pid

    store = ctx.store
    chosen = list(names) or store.names()
    out: list[Target] = []
    for name in chosen:
        cdir = store.get(name) if names else store.container(name)
        try:
            state = cdir.load_state()
            config = cdir.load_config()
        except (RichcError, OSError):
            if names:
                raise
            continue
        pid = live_pid(cdir, state.extra)
        if not config.lxcfs:
            if names:
                raise NotFound(f"{name} does not use lxcfs (created with --no-lxcfs)")
            continue
        if pid is None:
            if names:
                raise NotFound(f"{name} is not running", hint=f"start it: richc start {name}")
            continue
        out.append(Target(cdir, state, pid))
    return out


def host_status(ctx: Context) -> dict[str, Any]:
    import lxcfs_integration as li

    conf = settings(ctx.paths)
    status = li.home_status(conf.home)
    current = li.current(conf.home, run_dir(ctx.paths)) if status.state.serving() else None
    views: list[str] = []
    if status.state.serving():
        with contextlib.suppress(li.LxcfsError):
            views = [v.target for v in li.compute_views(conf.home)]
    return {
        "home": str(conf.home),
        "state": status.state.value,
        "healthy": status.state.serving(),
        "error": status.error,
        "pid": current.pid if current else None,
        "managed_by": current.manager.value if current else None,
        "required": conf.required,
        "views": views,
    }


def container_status(target: Target) -> dict[str, Any]:
    import lxcfs_integration as li

    views = recorded_views(target.state)
    health = li.container_health(target.pid, views)
    return {
        "name": target.cdir.name,
        "pid": target.pid,
        "healthy": health.healthy,
        "error": health.error
        or (None if views else "started without views (lxcfs was unavailable)"),
        "views": [
            {"target": v.target, "mounted": v.mounted, "readable": v.readable, "error": v.error}
            for v in health.views
        ],
    }


def status(ctx: Context) -> dict[str, Any]:
    return {
        "host": host_status(ctx),
        "containers": [container_status(t) for t in running_targets(ctx)],
    }


# -- recovery ----------------------------------------------------------------------------


def remount(ctx: Context, names: Sequence[str] = ()) -> dict[str, Any]:
    """Restart lxcfs if it is dead, then re-attach the views inside every running container
    that uses lxcfs (or the named ones), in place: init keeps running."""
    import lxcfs_integration as li

    targets = running_targets(ctx, names)
    process, started = ensure_serving(ctx.paths)
    conf = settings(ctx.paths)
    try:
        views = li.compute_views(conf.home)
    except li.LxcfsError as exc:
        raise _wrap(exc) from exc
    results = [_remount_one(t, views_for(t.state.runtime, views)) for t in targets]
    return {
        "host": {"home": str(conf.home), "pid": process.pid, "restarted": started},
        "containers": results,
    }


def _remount_one(target: Target, views: Sequence[li.View]) -> dict[str, Any]:
    import lxcfs_integration as li

    report = li.remount_views(target.pid, views)
    if report.ok and recorded_views(target.state) != tuple(views):
        # Record what is bound now, so health and the next remount use the same list
        # (only when it changed: the state write fsyncs, ~15 ms a container).
        with target.cdir.lock():
            state = target.cdir.load_state()
            state.extra["lxcfs"] = {
                **(state.extra.get("lxcfs") or {}),
                "enabled": True,
                "views": [_view_to_dict(v) for v in views],
            }
            target.cdir.save_state(state)
    return {
        "name": target.cdir.name,
        "pid": target.pid,
        "ok": report.ok,
        "method": report.method.value,
        "error": report.error,
        "views": [
            {"target": r.target, "outcome": r.outcome.value, "error": r.error}
            for r in report.results
        ],
    }


EventSink = Callable[[dict[str, Any]], None]


def watch(
    ctx: Context,
    *,
    interval: float = 2.0,
    stop: threading.Event | None = None,
    on_event: EventSink | None = None,
) -> None:
    """Keep lxcfs serving and the views attached until *stop* is set.

    Every *interval* seconds: if the home is not serving, restart lxcfs and remount every
    container; otherwise remount only containers whose views are unhealthy (one started
    while lxcfs was down, or one whose views someone unmounted).
    """
    import lxcfs_integration as li

    stop = stop or threading.Event()
    conf = settings(ctx.paths)
    while not stop.is_set():
        try:
            home = li.home_status(conf.home).state
            targets = running_targets(ctx)
            if not home.serving():
                # An absent lxcfs that no running container wants is left alone.
                if home.needs_unmount() or targets:
                    _report_event(on_event, remount(ctx))
            else:
                sick = [t.cdir.name for t in targets if quick_healthy(t.state, t.pid) is False]
                if sick:
                    _report_event(on_event, remount(ctx, sick))
        except RichcError as exc:
            log.warning("warning: lxcfs watch: %s", exc.message)
        stop.wait(interval)


def _report_event(on_event: EventSink | None, result: dict[str, Any]) -> None:
    for item in result["containers"]:
        state = "re-attached" if item["ok"] else f"failed: {item['error'] or item['views']}"
        log.info("lxcfs: %s (pid %s): views %s", item["name"], item["pid"], state)
    if on_event is not None:
        on_event(result)


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
            raise _wrap(exc) from exc
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
