"""Reading a host's /proc, /sys, /dev and /boot below a root directory.

The probe never opens an absolute path: it goes through :class:`HostTree`, so a test can
hand it a recorded tree of another kernel. A file that is missing or unreadable is
``None``, never an exception: an absent file is itself a fact about the kernel.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostTree:
    root: Path

    def path(self, name: str) -> Path:
        return self.root / name.lstrip("/")

    def read(self, name: str) -> str | None:
        try:
            return self.path(name).read_text(errors="replace")
        except OSError:
            # ENOENT, ENOTDIR, EACCES, and EINVAL from odd procfs files: all mean "not there".
            return None

    def read_line(self, name: str) -> str | None:
        text = self.read(name)
        if text is None:
            return None
        lines = text.splitlines()
        return lines[0].strip() if lines else ""

    def read_int(self, name: str) -> int | None:
        line = self.read_line(name)
        try:
            return int(line) if line is not None else None
        except ValueError:
            return None

    def exists(self, name: str) -> bool:
        return os.path.lexists(self.path(name))

    def is_dir(self, name: str) -> bool:
        return self.path(name).is_dir()

    def entries(self, name: str) -> tuple[str, ...] | None:
        """The sorted names in a directory, or None if it does not exist."""
        try:
            return tuple(sorted(os.listdir(self.path(name))))
        except OSError:
            return None

    def read_gzip(self, name: str) -> str | None:
        try:
            return gzip.decompress(self.path(name).read_bytes()).decode(errors="replace")
        except (OSError, EOFError, zlib.error):
            return None


def parse_kconfig(text: str) -> dict[str, str]:
    """``CONFIG_X=y`` lines as {"X": "y"}; ``# CONFIG_X is not set`` as {"X": "n"}."""
    config: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            config[key.removeprefix("CONFIG_")] = value.strip('"')
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            config[line[len("# CONFIG_") : -len(" is not set")]] = "n"
    return config


def kconfig_flag(config: Mapping[str, str] | None, name: str) -> bool | None:
    """True if built in or a module, False if not set, None if the config is unknown."""
    if config is None:
        return None
    return config.get(name, "n") in ("y", "m")
