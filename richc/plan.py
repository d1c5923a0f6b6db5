"""`create --dry-run`: what a create would do, computed without touching anything."""

from __future__ import annotations

from typing import Any

from richc.config import ContainerConfig
from richc.context import Context


def plan(ctx: Context, config: ContainerConfig) -> dict[str, Any]:
    store = ctx.store
    cdir = store.container(config.name)
    changes = [
        {"path": str(cdir.path), "action": "create", "reason": "the container's directory"},
        {"path": str(cdir.rootfs), "action": "populate", "reason": f"rootfs from {config.source}"},
    ]
    return {
        "name": config.name,
        "exists": cdir.exists(),
        "config": config.to_dict(),
        "changes": changes,
    }
