"""The host layout, relative to a root (``/`` in production, a temp dir in tests).

Every directory richc keeps below the root is named here once; per-container paths are
:class:`richc.store.ContainerDir`'s. Other modules ask these two, so that moving a
directory is a one-line change and ARCHITECTURE.md's host layout can be checked here.
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
    def networks(self) -> Path:
        """One directory per managed network: its definition and dnsmasq's files."""
        return self.lib / "networks"

    @property
    def quota_registry(self) -> Path:
        """Project IDs handed out to containers' rootfs trees (the project quota backend)."""
        return self.lib / "quota-projects.json"

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
    def locks(self) -> Path:
        """Lock files: per container, per image build, the networks."""
        return self.run / "locks"

    @property
    def runc_state(self) -> Path:
        """runc's ``--root``: its own state of richc's runc containers."""
        return self.run / "runc"

    @property
    def networks_run(self) -> Path:
        """dnsmasq's pid files, one per managed network."""
        return self.run / "networks"

    @property
    def lxcfs_run(self) -> Path:
        """The pid file and log of the lxcfs richc started."""
        return self.run / "lxcfs"

    @property
    def templates_cache(self) -> Path:
        """Compiled jinja2 templates."""
        return self.run / "templates"

    @property
    def logs(self) -> Path:
        return self.root / "var/log/richc"

    @property
    def systemd_units(self) -> Path:
        return self.root / "etc/systemd/system"
