"""The lxcfs views as plain data, and their two renderings: LXC mount entries and OCI mounts.

A view is one bind mount from the lxcfs home into the container. The list is computed from
what the running lxcfs serves, because versions differ (5.0 serves the whole
``sys/devices/system/cpu`` tree, older ones only ``online``; pressure files are newer).
"""

from __future__ import annotations

import enum
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lxcfs_integration.errors import LxcfsError

DEFAULT_HOME = Path("/var/lib/lxcfs")

# The /proc files lxcfs virtualizes, in the order LXC's own lxcfs hook binds them.
PROC_FILES = ("cpuinfo", "diskstats", "loadavg", "meminfo", "slabinfo", "stat", "swaps", "uptime")
PRESSURE_FILES = ("cpu", "io", "memory")
CPU_DIR = "sys/devices/system/cpu"

# runc refuses mounts under /proc except these (libcontainer's checkProcMount), so an OCI
# bundle cannot carry other /proc views such as /proc/pressure/*.
OCI_PROC_ALLOWED = frozenset(f"/proc/{name}" for name in PROC_FILES)


class ViewKind(enum.StrEnum):
    FILE = "file"
    DIR = "dir"

    def lxc_create_option(self) -> str:
        return f"create={self.value}"


@dataclass(frozen=True)
class View:
    source: Path  # on the host, inside the lxcfs home
    target: str  # absolute path as seen inside the container
    kind: ViewKind

    def oci_supported(self) -> bool:
        return not self.target.startswith("/proc/") or self.target in OCI_PROC_ALLOWED


def _inside(path: Path, home: Path) -> bool:
    return path != home and home in path.parents


def check_views(views: Iterable[View], home: Path) -> None:
    """Refuse a view that is not strictly inside the home: binding the home or a parent of it
    would hand the container the host's directories (and every other lxcfs file)."""
    for view in views:
        if not _inside(view.source, home):
            raise ValueError(f"lxcfs view {view.source} is not inside the lxcfs home {home}")
        if not view.target.startswith("/") or ".." in Path(view.target).parts:
            raise ValueError(f"lxcfs view target {view.target!r} is not a clean absolute path")


def _has(path: Path, kind: ViewKind) -> bool:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    except OSError as exc:
        # ENOTCONN from a dead lxcfs: no list of views is better than a wrong one.
        raise LxcfsError(
            f"lxcfs at {path} does not answer: {exc.strerror}",
            hint="restart lxcfs (richc lxcfs remount does, then re-attaches the views)",
        ) from exc
    return stat.S_ISDIR(mode) if kind is ViewKind.DIR else stat.S_ISREG(mode)


def compute_views(home: Path = DEFAULT_HOME) -> tuple[View, ...]:
    """The views the lxcfs serving *home* offers now (every check is a real lookup through it).

    An empty or missing home gives no views; a dead one raises LxcfsError.
    """
    views: list[View] = []
    proc = home / "proc"
    for name in PROC_FILES:
        if _has(proc / name, ViewKind.FILE):
            views.append(View(proc / name, f"/proc/{name}", ViewKind.FILE))
    for name in PRESSURE_FILES:
        if _has(proc / "pressure" / name, ViewKind.FILE):
            views.append(View(proc / "pressure" / name, f"/proc/pressure/{name}", ViewKind.FILE))
    cpu = home / CPU_DIR
    # lxcfs >= 5 serves the whole cpu directory (a uevent file marks the passthrough);
    # older versions only the online file.
    if _has(cpu / "uevent", ViewKind.FILE) and _has(cpu / "online", ViewKind.FILE):
        views.append(View(cpu, f"/{CPU_DIR}", ViewKind.DIR))
    elif _has(cpu / "online", ViewKind.FILE):
        views.append(View(cpu / "online", f"/{CPU_DIR}/online", ViewKind.FILE))
    result = tuple(views)
    check_views(result, home)
    return result


def _fstab_escape(path: str) -> str:
    """fstab(5) escaping, which LXC's mount entries use: whitespace and backslash as octal."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)


def render_lxc_entries(views: Iterable[View]) -> tuple[str, ...]:
    """``lxc.mount.entry`` values; ``optional`` so a container still starts without lxcfs."""
    return tuple(
        f"{_fstab_escape(os.fspath(v.source))} {_fstab_escape(v.target.lstrip('/'))} none "
        f"bind,optional,{v.kind.lxc_create_option()} 0 0"
        for v in views
    )


def render_lxc_config(views: Iterable[View]) -> str:
    return "".join(f"lxc.mount.entry = {entry}\n" for entry in render_lxc_entries(views))


def render_oci_mounts(views: Iterable[View]) -> list[dict[str, object]]:
    """OCI runtime-spec ``mounts`` entries; views runc would refuse are left out."""
    return [
        {
            "destination": v.target,
            "type": "bind",
            "source": os.fspath(v.source),
            "options": ["bind", "rprivate"],
        }
        for v in views
        if v.oci_supported()
    ]
