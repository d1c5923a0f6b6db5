"""The raw mount syscalls lxcfs recovery needs, through ctypes.

Each wrapper raises ``OSError(errno, strerror, path)`` through :func:`_check`, and ENOSYS
becomes "kernel too old" so a user on an old kernel learns why instead of reading
"Function not implemented".
"""

from __future__ import annotations

import ctypes
import errno
import os
from functools import cache

# <linux/fcntl.h>
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

# <linux/mount.h>
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004
MS_BIND = 4096
MS_REC = 16384

# <sys/mount.h>
MNT_DETACH = 2

# <linux/sched.h>
CLONE_NEWNS = 0x00020000

# <asm/unistd_64.h>: since Linux 5.2, new syscalls share one number on every architecture
# (alpha aside), so these hold on x86-64 and arm64 alike.
NR_open_tree = 428
NR_move_mount = 429

# Since Linux 5.2 (open_tree, move_mount).
NEW_MOUNT_API_SINCE = "5.2"


@cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
    libc.mount.argtypes = (
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_void_p,
    )
    return libc


def _check(result: int, what: str, path: str | None = None) -> int:
    """Turn a -1 from libc into an OSError carrying errno, its text and the path involved."""
    if result >= 0:
        return result
    err = ctypes.get_errno()
    if err == errno.ENOSYS:
        raise OSError(err, f"{what}: kernel too old (needs Linux {NEW_MOUNT_API_SINCE})", path)
    raise OSError(err, f"{what}: {os.strerror(err)}", path)


def open_tree(path: str, flags: int, *, dirfd: int = AT_FDCWD) -> int:
    """A file descriptor for the mount at *path*; with OPEN_TREE_CLONE, a detached copy of it."""
    fd = _libc().syscall(
        ctypes.c_long(NR_open_tree),
        ctypes.c_int(dirfd),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.c_uint(flags),
    )
    return _check(fd, "open_tree", path)


def move_mount(from_fd: int, to_path: str, *, to_dirfd: int = AT_FDCWD) -> None:
    """Attach the detached mount behind *from_fd* at *to_path* (in the caller's namespace)."""
    result = _libc().syscall(
        ctypes.c_long(NR_move_mount),
        ctypes.c_int(from_fd),
        ctypes.c_char_p(b""),
        ctypes.c_int(to_dirfd),
        ctypes.c_char_p(os.fsencode(to_path)),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
    )
    _check(result, "move_mount", to_path)


def setns(fd: int, nstype: int, path: str | None = None) -> None:
    _check(_libc().setns(fd, nstype), "setns", path)


def umount2(path: str, flags: int) -> None:
    _check(_libc().umount2(os.fsencode(path), flags), "umount2", path)


def bind_mount(source: str, target: str, *, recursive: bool = False) -> None:
    flags = MS_BIND | (MS_REC if recursive else 0)
    _check(
        _libc().mount(os.fsencode(source), os.fsencode(target), None, flags, None),
        "mount",
        target,
    )


@cache
def have_open_tree() -> bool:
    """Ask the kernel, not its version string: open_tree without CLONE needs no privilege."""
    try:
        fd = open_tree("/", OPEN_TREE_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EPERM):
            # EPERM: a seccomp filter that hides the new mount API behaves like an old kernel.
            return False
        raise
    os.close(fd)
    return True
