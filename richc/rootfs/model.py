"""The result of building a rootfs: each change richc made (or would make) to it."""

from __future__ import annotations

from dataclasses import dataclass, field

from richc.config import Init


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
