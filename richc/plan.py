"""`create --dry-run`: what a create would do, computed without touching anything."""

from __future__ import annotations

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
    return {
        "name": config.name,
        "exists": cdir.exists(),
        "init": init.value,
        "config": config.to_dict(),
        "changes": changes,
    }
