"""The overlay rootfs of a container that shares a cached image, as a host resource.

The mount itself is made while the rootfs is populated (richc.rootfs.share); here it is
mounted again before a start when a host reboot (or an admin) unmounted it, and unmounted
at rm, before the store deletes the container's upper layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from richc.hostres import BaseResource
from richc.rootfs import share

if TYPE_CHECKING:
    from richc import config as cfg
    from richc.context import Context
    from richc.state import State
    from richc.store import ContainerDir


class OverlayResource(BaseResource):
    name = "overlay"

    def prepare(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
    ) -> None:
        share.activate(cdir, state)

    def release(self, ctx: Context, cdir: ContainerDir, state: State) -> None:
        share.release(cdir, state)

    def describe(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig | None, state: State
    ) -> Any:
        if state.overlay is None:
            return None
        return {"image": state.overlay.image, "upper": state.overlay.upper}


RESOURCE = OverlayResource()
