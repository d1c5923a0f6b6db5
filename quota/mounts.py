"""Which filesystem holds a path, how it is mounted, and mount(2)/umount2(2)."""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass
from pathlib import Path

from quota._libc import StrPath, check, libc

# <linux/magic.h>
EXT4_SUPER_MAGIC = 0xEF53  # ext2, ext3 and ext4 share it
XFS_SUPER_MAGIC = 0x58465342
BTRFS_SUPER_MAGIC = 0x9123683E
TMPFS_MAGIC = 0x01021994
OVERLAYFS_SUPER_MAGIC = 0x794C7630

FS_NAMES = {
    EXT4_SUPER_MAGIC: "ext4",
    XFS_SUPER_MAGIC: "xfs",
    BTRFS_SUPER_MAGIC: "btrfs",
    TMPFS_MAGIC: "tmpfs",
    OVERLAYFS_SUPER_MAGIC: "overlay",
}

# <sys/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MNT_FORCE = 1
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8


class _Statfs(ctypes.Structure):
    # <bits/statfs.h>, 64-bit layout (statfs64 on 32-bit differs only in width)
    _fields_ = [
        ("f_type", ctypes.c_long),
        ("f_bsize", ctypes.c_long),
        ("f_blocks", ctypes.c_ulong),
        ("f_bfree", ctypes.c_ulong),
        ("f_bavail", ctypes.c_ulong),
        ("f_files", ctypes.c_ulong),
        ("f_ffree", ctypes.c_ulong),
        ("f_fsid", ctypes.c_int * 2),
        ("f_namelen", ctypes.c_long),
        ("f_frsize", ctypes.c_long),
        ("f_flags", ctypes.c_long),
        ("f_spare", ctypes.c_long * 4),
    ]


libc.statfs.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Statfs)]
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.syncfs.argtypes = [ctypes.c_int]


def fs_magic(path: StrPath) -> int:
    """statfs(2) f_type of the filesystem holding *path* (follows bind mounts correctly)."""
    buf = _Statfs()
    check(libc.statfs(os.fsencode(path), ctypes.byref(buf)), path, "statfs")
    return int(buf.f_type) & 0xFFFFFFFF


def fs_name(path: StrPath) -> str:
    magic = fs_magic(path)
    return FS_NAMES.get(magic, f"0x{magic:x}")


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo."""

    mount_id: int
    major: int
    minor: int
    root: str
    mount_point: str
    options: tuple[str, ...]  # per-mount options (rw, nosuid, ...)
    fstype: str
    source: str
    super_options: tuple[str, ...]  # filesystem options (prjquota, pquota, ...)

    def has_option(self, *names: str) -> bool:
        opts = set(self.options) | set(self.super_options)
        return any(name in opts for name in names)


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        head, _, tail = line.partition(" - ")
        fields = head.split()
        fstype, source, super_opts = ([*tail.split(), "", "", ""])[:3]
        major, minor = fields[2].split(":")
        mounts.append(
            Mount(
                mount_id=int(fields[0]),
                major=int(major),
                minor=int(minor),
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                options=tuple(fields[5].split(",")),
                fstype=fstype,
                source=_unescape(source),
                super_options=tuple(super_opts.split(",")) if super_opts else (),
            )
        )
    return mounts


def mountinfo() -> list[Mount]:
    return parse_mountinfo(Path("/proc/self/mountinfo").read_text())


def find_mount(path: StrPath, mounts: list[Mount] | None = None) -> Mount:
    """The mount that holds *path*: the longest mount point above it, the topmost one when
    several are stacked there (later lines in mountinfo are mounted on top)."""
    target = os.path.realpath(path)
    best: Mount | None = None
    for mount in mountinfo() if mounts is None else mounts:
        point = mount.mount_point
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    if best is None:
        raise FileNotFoundError(f"no mount holds {target}")
    return best


def is_mount_point(path: StrPath) -> bool:
    target = os.path.realpath(path)
    return any(m.mount_point == target for m in mountinfo())


def mount(source: StrPath, target: StrPath, fstype: str, flags: int = 0, data: str = "") -> None:
    check(
        libc.mount(
            os.fsencode(source),
            os.fsencode(target),
            fstype.encode(),
            flags,
            data.encode() if data else None,
        ),
        target,
        f"mount {os.fspath(source)}",
    )


def umount(target: StrPath, flags: int = 0) -> None:
    check(libc.umount2(os.fsencode(target), flags), target, "umount")


def syncfs(path: StrPath) -> None:
    """Commit the filesystem holding *path* (btrfs accounts qgroups at commit)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        check(libc.syncfs(fd), path, "syncfs")
    finally:
        os.close(fd)
