"""The host layout, relative to a root (``/`` in production, a temp dir in tests).

Only :mod:`richc.store` should build per-container paths; other modules ask the store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostPaths:
    root: Path

    @classmethod
    def from_root(cls, root: str | os.PathLike[str] | None) -> HostPaths:
        return cls(Path(root or "/").resolve())

    @property
    def etc(self) -> Path:
        return self.root / "etc/richc"

    @property
    def host_config(self) -> Path:
        return self.etc / "richc.yaml"

    @property
    def hooks_d(self) -> Path:
        return self.etc / "hooks.d"

    @property
    def lib(self) -> Path:
        return self.root / "var/lib/richc"

    @property
    def containers(self) -> Path:
        """LXC's lxcpath: ``lxc-ls -P`` on it lists richc's containers."""
        return self.lib / "containers"

    @property
    def images(self) -> Path:
        return self.lib / "images"

    @property
    def run(self) -> Path:
        return self.root / "run/richc"

    @property
    def logs(self) -> Path:
        return self.root / "var/log/richc"

    @property
    def systemd_units(self) -> Path:
        return self.root / "etc/systemd/system"
