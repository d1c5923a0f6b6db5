"""mount(2) and umount2(2) for read-only guest filesystems, and /proc/self/mountinfo."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from pathlib import Path

StrPath = str | os.PathLike[str]

log = logging.getLogger("vmimport")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

# <sys/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

# A guest's filesystem is data to copy, never something to run or open devices from.
GUEST_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC

# Options that keep a read-only mount from writing to the device: ext3/4 would replay its
# journal and xfs its log even on a read-only mount; btrfs would replay its log tree. The
# loop device is read-only too, so without them a dirty filesystem would not mount at all.
# xfs refuses a second filesystem with the same UUID (a clone of the host's) without
# nouuid. ext2 and ext3 are mounted by the ext4 driver, which takes the same options.
READ_ONLY_OPTIONS = {
    "ext2": ("ext4", "noload"),
    "ext3": ("ext4", "noload"),
    "ext4": ("ext4", "noload"),
    "xfs": ("xfs", "norecovery,nouuid"),
    "btrfs": ("btrfs", "rescue=nologreplay"),
}


def guest_mount_args(fstype: str, extra: tuple[str, ...] = ()) -> tuple[str, str]:
    """(driver, data) to mount a guest filesystem of *fstype* without writing to it."""
    driver, data = READ_ONLY_OPTIONS.get(fstype, (fstype, ""))
    return driver, ",".join(o for o in (data, *extra) if o)


def mount_ro(device: StrPath, target: StrPath, fstype: str, extra: tuple[str, ...] = ()) -> None:
    """Mount *device* at *target* read-only, nosuid, nodev, noexec; raise OSError."""
    driver, data = guest_mount_args(fstype, extra)
    log.debug(
        "+ mount -t %s -o %s %s %s", driver, ",".join(["ro", data]).strip(","), device, target
    )
    rc = _libc.mount(
        os.fsencode(device), os.fsencode(target), driver.encode(), GUEST_FLAGS, data.encode()
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), os.fspath(target))


def unmount(target: StrPath) -> None:
    """Unmount *target*; when it is busy (a shell sitting in it), detach it lazily so it
    goes away with its last user. Not mounted counts as done."""
    path = os.fsencode(target)
    if _libc.umount2(path, UMOUNT_NOFOLLOW) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EBUSY and _libc.umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0:
        return
    err = ctypes.get_errno() if err == errno.EBUSY else err
    if err in (errno.EINVAL, errno.ENOENT) and not is_mountpoint(target):
        return
    raise OSError(err, f"umount: {os.strerror(err)}", os.fspath(target))


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mountpoints(mountinfo: StrPath = "/proc/self/mountinfo") -> list[str]:
    """Every mount point, in mount order."""
    return [_unescape(line.split()[4]) for line in Path(mountinfo).read_text().splitlines()]


def is_mountpoint(path: StrPath) -> bool:
    return os.path.abspath(path) in mountpoints()


def mounts_under(path: StrPath) -> list[str]:
    """Mount points at or below *path*."""
    top = os.path.abspath(path)
    return [m for m in mountpoints() if m == top or m.startswith(top.rstrip("/") + "/")]
