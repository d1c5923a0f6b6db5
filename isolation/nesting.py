"""Nesting: what a container needs so that unprivileged containers can start inside it.

A container that starts in a new user namespace mounts a fresh /proc and /sys. The kernel
allows that only if this mount namespace already shows a proc (and a sysfs) *fully*: one
whose child mounts, all locked when the namespace is copied into a less privileged user
namespace, cover nothing but permanently empty directories (``mnt_already_visible`` in
fs/namespace.c). A container's own /proc has masks over /proc/kcore and friends, and lxcfs
binds over /proc/meminfo, so a nested unprivileged container fails with "Failed to mount
proc: Operation not permitted".

The remedy is LXC's and Incus's: a second, unmasked proc and sysfs at /dev/.lxc/proc and
/dev/.lxc/sys, with the flags a new proc mount uses (nosuid, nodev, noexec), so the check
finds one fully visible instance. The cost, which the README states: in that container,
/dev/.lxc/proc shows what the masks hide. Unprivileged, the kernel's own permissions still
keep root out of /proc/kcore and /proc/sysrq-trigger (host-owned, mode 0400 and 0200);
privileged, container root is host root and only the dropped capabilities remain.

:func:`fully_visible` reads a mountinfo text and says whether the check would pass: the
kernel's "permanently empty directory" is not visible from user space, so the directories
that are (the kernel's own mount points under /proc and /sys) are listed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROC_TARGET = "/dev/.lxc/proc"
SYS_TARGET = "/dev/.lxc/sys"
_FLAGS = ("nosuid", "nodev", "noexec")

# Directories the kernel creates permanently empty to mount a filesystem on
# (register_sysctl_mount_point, sysfs_create_mount_point): a mount there hides nothing.
EMPTY_MOUNT_POINTS = frozenset(
    {
        "/proc/sys/fs/binfmt_misc",
        "/sys/fs/cgroup",
        "/sys/fs/fuse/connections",
        "/sys/fs/bpf",
        "/sys/fs/pstore",
        "/sys/kernel/security",
        "/sys/kernel/debug",
        "/sys/kernel/tracing",
        "/sys/kernel/config",
        "/sys/firmware/efi/efivars",
    }
)


def lxc_mount_entries() -> list[tuple[str, str]]:
    """``lxc.mount.entry`` lines mounting the unmasked proc and sysfs below /dev (``create=
    dir``: LXC's autodev /dev is a fresh tmpfs)."""
    options = ",".join((*_FLAGS, "create=dir", "optional"))
    return [
        ("lxc.mount.entry", f"proc {PROC_TARGET.lstrip('/')} proc {options} 0 0"),
        ("lxc.mount.entry", f"sysfs {SYS_TARGET.lstrip('/')} sysfs {options} 0 0"),
    ]


def oci_mounts() -> list[dict[str, object]]:
    """The same two mounts as OCI ``mounts`` entries (runc creates the directories)."""
    return [
        {"destination": PROC_TARGET, "type": "proc", "source": "proc", "options": [*_FLAGS]},
        {"destination": SYS_TARGET, "type": "sysfs", "source": "sysfs", "options": [*_FLAGS]},
    ]


@dataclass(frozen=True)
class Visibility:
    """Whether a new *fstype* mount would pass the kernel's check in this mount namespace;
    ``hidden`` names what covers the best candidate when it would not."""

    fstype: str
    visible: bool
    hidden: tuple[str, ...] = ()


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def fully_visible(mountinfo: str, fstype: str) -> Visibility:
    """Whether some *fstype* (``proc`` or ``sysfs``) mount in *mountinfo* has children only
    on the kernel's empty mount points; otherwise the fewest covered paths of any."""
    mounts: list[tuple[str, str, str, str, str]] = []  # id, parent, root, mount point, type
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mounts.append(
            (fields[0], fields[1], _unescape(fields[3]), _unescape(fields[4]), right.split()[0])
        )
    best: tuple[str, ...] | None = None
    for mount_id, _, root, point, kind in mounts:
        # Only a mount of the whole filesystem counts: a bind of /proc/sys shows a part.
        if kind != fstype or root != "/":
            continue
        covered = tuple(
            child_point
            for _, parent, _, child_point, _ in mounts
            if parent == mount_id and _relative(child_point, point) not in _empty_below(fstype)
        )
        if not covered:
            return Visibility(fstype, True)
        if best is None or len(covered) < len(best):
            best = covered
    return Visibility(fstype, False, best or ())


def _relative(child: str, point: str) -> str:
    """*child*'s path as if its parent mount were at the kernel's usual place."""
    return child[len(point.rstrip("/")) :] if child.startswith(point.rstrip("/") + "/") else child


def _empty_below(fstype: str) -> frozenset[str]:
    prefix = "/proc" if fstype == "proc" else "/sys"
    return frozenset(p[len(prefix) :] for p in EMPTY_MOUNT_POINTS if p.startswith(prefix + "/"))


def hidden(mountinfo: str) -> str | None:
    """None when a new proc and sysfs could be mounted under *mountinfo*; else what covers
    them, e.g. ``proc has mounts over /proc/sys, /proc/kcore; sysfs has mounts over ...``."""
    found = [fully_visible(mountinfo, fstype) for fstype in ("proc", "sysfs")]
    what = [
        f"{v.fstype} has mounts over {', '.join(v.hidden[:3]) or '(none mounted)'}"
        for v in found
        if not v.visible
    ]
    return "; ".join(what) or None
