"""`create --dry-run`: what a create would do, computed without touching anything."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from richc.config import ContainerConfig
from richc.context import Context


def plan(ctx: Context, config: ContainerConfig) -> dict[str, Any]:
    from richc.rootfs.planning import plan as plan_rootfs

    store = ctx.store
    cdir = store.container(config.name)
    init, rootfs_changes = plan_rootfs(config, ctx.paths, cdir.rootfs)
    changes = [
        {"path": str(cdir.path), "action": "create", "reason": "the container's directory"},
        *(change.to_dict() for change in rootfs_changes),
    ]
    shared = any(change.action == "overlay" for change in rootfs_changes)
    return {
        "name": config.name,
        "exists": cdir.exists(),
        "init": init.value,
        "config": config.to_dict(),
        "changes": changes,
        "security": security_plan(ctx, config, shared=shared),
    }


def security_plan(ctx: Context, config: ContainerConfig, *, shared: bool) -> dict[str, Any]:
    """Whether the container would be unprivileged, why, and what might need --privileged."""
    seccomp = config.security.seccomp
    filtered = {
        "default": "richc's seccomp deny list",
        "unconfined": "no seccomp filter (--seccomp unconfined)",
    }.get(seccomp, f"the seccomp profile {seccomp}")
    notes = _privileged_notes(config)
    if config.security.nesting:
        notes.append(
            "--nesting: an unmasked /proc and /sys at /dev/.lxc/proc and /dev/.lxc/sys, so "
            "unprivileged containers can start inside; they show what the masks hide"
            + (" (and, privileged, let container root write /proc/sysrq-trigger)"
               if config.security.privileged else "")
        )  # fmt: skip
    if config.security.privileged:
        why = (
            "asked for (--privileged / security.privileged): container root is host root; "
            f"{filtered}; the masked and read-only /proc and /sys paths still apply"
        )
        return {"privileged": True, "why": why, "ownership": None, "notes": notes}
    if shared:
        ownership = "overlay: the shared image through an idmapped read-only view, no chown"
    else:
        from isolation.overlay import plan_ownership

        found = plan_ownership(_existing(ctx.paths.containers))
        ownership = f"{found.method.value}: {found.reason}"
    why = (
        "a user namespace with 65536 host ids of its own (reserved in "
        f"{ctx.paths.root / 'etc/subuid'} and subgid at create); {filtered}; masked and "
        "read-only /proc and /sys paths"
    )
    return {"privileged": False, "why": why, "ownership": ownership, "notes": notes}


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _privileged_notes(config: ContainerConfig) -> list[str]:
    """What in this config may need container root to be host root."""
    notes = []
    if config.source.startswith("dir:"):
        devices = _device_nodes(Path(config.source[4:]) / "dev")
        if devices:
            notes.append(
                f"the tree has {len(devices)} device node(s) in /dev (e.g. {devices[0]}): "
                "an unprivileged container cannot make or use block devices; "
                "create it with --privileged if the VM needs them"
            )
    if config.hooks:
        notes.append(
            "hooks run on the host as host root; files a hook writes into the rootfs show as "
            "nobody inside unless it chowns them to the container's ids; a hook that needs "
            "the container's root to be host root needs --privileged"
        )
    return notes


def _device_nodes(dev: Path) -> list[str]:
    """Block devices and unusual character devices under a tree's /dev (the standard ones
    LXC and runc provide themselves are skipped)."""
    standard = {"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"}
    found = []
    try:
        for root, _dirs, files in os.walk(dev):
            for name in files:
                path = os.path.join(root, name)
                mode = os.lstat(path).st_mode
                if stat.S_ISBLK(mode) or (stat.S_ISCHR(mode) and name not in standard):
                    found.append(path)
    except OSError:
        return found
    return sorted(found)
