"""libc access and the one helper that turns a failed call into an OSError.

Every raw system call in this package reports failure through :func:`oserror`, so the
errno, the path and the "kernel too old" wording for ENOSYS are the same everywhere.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from typing import Any

from quota.errors import KernelTooOld

StrPath = str | os.PathLike[str]

libc = ctypes.CDLL(None, use_errno=True)

# <asm-generic/ioctl.h>: the ioctl request encoding used on x86, arm and most others.
_IOC_NRBITS = 8
_IOC_TYPEBITS = 8
_IOC_SIZEBITS = 14
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS
_IOC_NONE = 0
_IOC_WRITE = 1
_IOC_READ = 2


def _ioc(direction: int, kind: int | str, nr: int, size: int) -> int:
    code = ord(kind) if isinstance(kind, str) else kind
    return (
        (direction << _IOC_DIRSHIFT)
        | (code << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
        | (size << _IOC_SIZESHIFT)
    )


def IO(kind: int | str, nr: int) -> int:
    return _ioc(_IOC_NONE, kind, nr, 0)


def IOR(kind: int | str, nr: int, ctype: Any) -> int:
    return _ioc(_IOC_READ, kind, nr, ctypes.sizeof(ctype))


def IOW(kind: int | str, nr: int, ctype: Any) -> int:
    return _ioc(_IOC_WRITE, kind, nr, ctypes.sizeof(ctype))


def IOWR(kind: int | str, nr: int, ctype: Any) -> int:
    return _ioc(_IOC_READ | _IOC_WRITE, kind, nr, ctypes.sizeof(ctype))


def oserror(err: int, path: StrPath | None = None, what: str | None = None) -> OSError:
    """The OSError for *err*; ENOSYS says plainly that the kernel lacks the call."""
    filename = None if path is None else os.fspath(path)
    if err == errno.ENOSYS:
        call = f"{what}: " if what else ""
        return KernelTooOld(
            f"{call}function not implemented: the kernel is too old or was built without it",
            filename,
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


def ioctl(fd: int, request: int, arg: Any, path: StrPath | None = None, what: str = "ioctl") -> int:
    """ioctl(2) on *fd* with a mutable ctypes structure (filled in place) or an int."""
    try:
        if isinstance(arg, int):
            return int(fcntl.ioctl(fd, request, arg))
        return int(fcntl.ioctl(fd, request, arg, True))
    except OSError as exc:
        raise oserror(exc.errno or errno.EIO, path, what) from None


class opened:
    """``with opened(path, flags) as fd``: an fd closed on every exit path."""

    def __init__(self, path: StrPath, flags: int = os.O_RDONLY, mode: int = 0o600) -> None:
        self.path = path
        self.flags = flags | os.O_CLOEXEC
        self.mode = mode
        self.fd = -1

    def __enter__(self) -> int:
        self.fd = os.open(self.path, self.flags, self.mode)
        return self.fd

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
