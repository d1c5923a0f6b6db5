"""libc access and the one helper that turns a failed call into an OSError.

Every raw system call in this package reports failure through :func:`oserror`, so the errno,
the path and the "kernel too old" wording for ENOSYS are the same everywhere.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from functools import cache

from isolation.errors import KernelTooOld, StrPath

# <asm/unistd_64.h> (x86-64) and <asm-generic/unistd.h> (arm64 and the others): since
# Linux 5.2 new system calls share one number on every architecture but alpha, so the
# mount API numbers hold on both machines richc runs on.
NR_open_tree = 428
NR_move_mount = 429
NR_mount_setattr = 442


@cache
def libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    lib.unshare.argtypes = (ctypes.c_int,)
    lib.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
    return lib


def oserror(err: int, path: StrPath | None = None, what: str | None = None) -> OSError:
    """The OSError for *err*; ENOSYS says plainly that the kernel lacks the call."""
    filename = None if path is None else os.fspath(path)
    if err == errno.ENOSYS:
        call = f"{what}: " if what else ""
        return KernelTooOld(
            f"{call}function not implemented: the kernel is too old or was built without it",
            filename,
            hint="idmapped mounts need Linux 5.12 (tmpfs 6.3); use the ownership shift instead",
        )
    message = os.strerror(err)
    if what:
        message = f"{what}: {message}"
    return OSError(err, message, filename)


def check(result: int, path: StrPath | None = None, what: str | None = None) -> int:
    """Return *result* from a libc call, or raise the OSError its errno describes."""
    if result < 0:
        raise oserror(ctypes.get_errno(), path, what)
    return result


def machine() -> str:
    """The kernel's machine name (x86_64, aarch64): what the seccomp architectures follow."""
    return platform.machine()
