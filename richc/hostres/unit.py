"""A container's systemd unit as a host resource: installed by `richc unit install`
(richc.systemd_unit), recorded in ``state.unit``, removed at rm so it never starts a ghost
at the next boot, and shown by inspect."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from richc.hostres import BaseResource

if TYPE_CHECKING:
    from richc import config as cfg
    from richc.context import Context
    from richc.state import State
    from richc.store import ContainerDir


class UnitResource(BaseResource):
    name = "unit"

    def release(self, ctx: Context, cdir: ContainerDir, state: State) -> None:
        if state.unit is not None:
            from richc import systemd_unit

            systemd_unit.uninstall(ctx.paths, cdir.name)

    def describe(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig | None, state: State
    ) -> Any:
        return dataclasses.asdict(state.unit) if state.unit is not None else None


RESOURCE = UnitResource()
