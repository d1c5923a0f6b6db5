"""Building a container's rootfs from a source, and the files richc renders into it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from richc.config import ContainerConfig, Init
from richc.errors import UsageError
from richc.paths import HostPaths


@dataclass(frozen=True)
class Change:
    """One change richc makes (or, in a dry run, would make) to a rootfs."""

    path: str
    action: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "action": self.action, "reason": self.reason}


@dataclass
class RootfsResult:
    init: Init
    changes: list[Change] = field(default_factory=list)


def populate(config: ContainerConfig, target: Path, paths: HostPaths) -> RootfsResult:
    """Fill the empty directory *target* from the config's source and render richc's files."""
    source = config.source
    if source == "busybox":
        from richc.rootfs import busybox

        return busybox.populate(config, target, paths)
    raise UsageError(
        f"source {source!r} is not supported by this richc yet",
        hint="use --from busybox",
    )
