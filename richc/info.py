"""The view of a container that `inspect` and `list` print (CLI.md's JSON fields)."""

from __future__ import annotations

from typing import Any

from richc.config import DEVICE_LIMIT_KEYS, ContainerConfig, Limits
from richc.context import Context
from richc.errors import RichcError
from richc.procs import live_pid
from richc.state import State
from richc.stats import usage
from richc.store import ContainerDir


def _read(
    cdir: ContainerDir,
) -> tuple[State, ContainerConfig | None, int | None, dict[str, Any]]:
    """The container's state, config (None when unreadable), live init pid, and the fields
    :func:`summary` and :func:`describe` both begin with."""
    state = cdir.load_state()
    try:
        config = cdir.load_config()
    except RichcError:
        config = None
    pid = live_pid(state.init_run)
    if state.status == "creating" or config is None:
        status = "broken"
    elif pid:
        status = "running"
    elif state.started_at:
        status = "stopped"
    else:
        status = "created"
    head = {
        "name": cdir.name,
        "state": status,
        "runtime": state.runtime,
        "init": state.init,
        "pid": pid,
    }
    return state, config, pid, head


def summary(ctx: Context, cdir: ContainerDir) -> dict[str, Any]:
    """What `richc list` prints as a table: a subset of :func:`describe` without the host
    resources' parts, whose modules (the spec, isolation's policy) and checks (lxcfs
    health, quota usage) a table row does not need."""
    state, config, pid, head = _read(cdir)
    return {
        **head,
        "source": config.source if config else None,
        "limits": {"memory_bytes": config.limits.memory if config else None},
        "usage": usage(ctx, cdir, state, pid),
    }


def describe(ctx: Context, cdir: ContainerDir) -> dict[str, Any]:
    from richc import hostres

    state, config, pid, head = _read(cdir)
    limits = config.limits if config else None
    return {
        **head,
        "hostname": config.hostname if config else None,
        "rootfs": str(cdir.rootfs),
        "source": config.source if config else None,
        "limits": {
            "memory_bytes": limits.memory if limits else None,
            "cpus": limits.cpus if limits else None,
            "cpuset": (config.limits.to_dict().get("cpuset") if config else None),
            "pids": limits.pids if limits else None,
            **_more_limits(limits),
        },
        "usage": usage(ctx, cdir, state, pid),
        # Every host resource's own part: disk, lxcfs, unit (and those that add one later).
        **{r.name: r.describe(ctx, cdir, config, state) for r in hostres.all_resources()},
        "env": config.env_dict if config else {},
        "annotations": dict(config.annotations) if config else {},
        "hooks": {stage: [h.to_dict() for h in refs] for stage, refs in config.hooks}
        if config
        else {},
        "restart": config.restart.value if config else None,
        "created_at": state.created_at,
        "started_at": state.started_at if pid else None,
        "stopped_at": state.stopped_at,
        "applied": state.applied,
    }


def _more_limits(limits: Limits | None) -> dict[str, Any]:
    """The limits beyond CLI.md's four, only those set (docs/cli-json.md)."""
    data = limits.to_dict() if limits else {}
    renamed = {"memory_swap": "memory_swap_bytes", "memory_reservation": "memory_reservation_bytes"}
    keys = ("memory_swap", "memory_reservation", "cpu_shares", "cpu_weight", "io_weight",
            *DEVICE_LIMIT_KEYS, "ulimits")  # fmt: skip
    return {renamed.get(key, key): data[key] for key in keys if key in data}


def list_all(ctx: Context, *, brief: bool = False) -> list[dict[str, Any]]:
    """Every container's :func:`describe`, or with *brief* its :func:`summary`."""
    store = ctx.store
    view = summary if brief else describe
    return [view(ctx, store.container(name)) for name in store.names()]
