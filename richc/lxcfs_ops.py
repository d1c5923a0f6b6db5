"""`richc lxcfs status|remount|watch`: lxcfs health and recovery across running containers.

The per-container side (settings, lxcfs at start, the spec's view mounts) is the lxcfs host
resource, richc.hostres.lxcfs; this module works across the store's running containers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from richc.context import Context
from richc.errors import NotFound, RichcError
from richc.hostres import lxcfs
from richc.procs import live_pid
from richc.state import LxcfsRecord, State
from richc.store import ContainerDir

if TYPE_CHECKING:
    import lxcfs_integration as li

log = logging.getLogger("richc")


@dataclass(frozen=True)
class Target:
    """A running container that uses lxcfs: what remount and status work on."""

    cdir: ContainerDir
    state: State
    pid: int


def running_targets(ctx: Context, names: Sequence[str] = ()) -> list[Target]:
    """Running containers with lxcfs enabled; named ones must exist, run and use lxcfs."""
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
        pid = live_pid(state.init_run)
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

    conf = lxcfs.settings(ctx.paths)
    status = li.home_status(conf.home)
    current = li.current(conf.home, lxcfs.run_dir(ctx.paths)) if status.state.serving() else None
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

    views = lxcfs.recorded_views(target.state)
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
    process, started = lxcfs.ensure_serving(ctx.paths)
    conf = lxcfs.settings(ctx.paths)
    try:
        views = li.compute_views(conf.home)
    except li.LxcfsError as exc:
        raise lxcfs.wrap_error(exc) from exc
    results = [_remount_one(t, lxcfs.views_for(t.state.runtime, views)) for t in targets]
    return {
        "host": {"home": str(conf.home), "pid": process.pid, "restarted": started},
        "containers": results,
    }


def _remount_one(target: Target, views: Sequence[li.View]) -> dict[str, Any]:
    import lxcfs_integration as li

    report = li.remount_views(target.pid, views)
    if report.ok and lxcfs.recorded_views(target.state) != tuple(views):
        # Record what is bound now, so health and the next remount use the same list
        # (only when it changed: the state write fsyncs, ~15 ms a container).
        with target.cdir.lock():
            state = target.cdir.load_state()
            old = state.lxcfs or LxcfsRecord(enabled=True)
            state.lxcfs = dataclasses.replace(
                old, enabled=True, views=tuple(map(lxcfs.view_record, views))
            )
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
    conf = lxcfs.settings(ctx.paths)
    while not stop.is_set():
        try:
            home = li.home_status(conf.home).state
            targets = running_targets(ctx)
            if not home.serving():
                # An absent lxcfs that no running container wants is left alone.
                if home.needs_unmount() or targets:
                    _report_event(on_event, remount(ctx))
            else:
                sick = [
                    t.cdir.name for t in targets if lxcfs.quick_healthy(t.state, t.pid) is False
                ]
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
