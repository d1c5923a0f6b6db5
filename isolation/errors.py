"""The isolation package's errors: real OSErrors with an errno, a message a user can act on
and an optional hint. richc wraps them once; other callers can test ``errno``."""

from __future__ import annotations

import errno
import os

StrPath = str | os.PathLike[str]


class IsolationError(OSError):
    """Base class. ``strerror`` holds the whole message, ``filename`` the path concerned."""

    def __init__(
        self, err: int, message: str, path: StrPath | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(err, message, None if path is None else os.fspath(path))
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.filename}: " if self.filename else ""
        return f"{where}{self.message}"


class KernelTooOld(IsolationError):
    """ENOSYS: the running kernel lacks the system call or was built without the feature."""

    def __init__(
        self, message: str, path: StrPath | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(errno.ENOSYS, message, path, hint=hint)


class IdRangeExhausted(IsolationError):
    """ENOSPC: no free subordinate id range of the requested size is left below 2^32."""

    def __init__(self, message: str, path: StrPath | None = None, *, hint: str | None = None):
        super().__init__(errno.ENOSPC, message, path, hint=hint)


class SubIdFileInvalid(IsolationError):
    """EINVAL: a line of /etc/subuid or /etc/subgid is not ``owner:start:count``."""

    def __init__(self, message: str, path: StrPath | None = None, *, hint: str | None = None):
        super().__init__(errno.EINVAL, message, path, hint=hint)


class IdmapUnsupported(IsolationError):
    """EOPNOTSUPP: the filesystem (or the kernel) cannot make an idmapped mount here."""

    def __init__(self, message: str, path: StrPath | None = None, *, hint: str | None = None):
        super().__init__(errno.EOPNOTSUPP, message, path, hint=hint)


class ShiftConflict(IsolationError):
    """EINVAL: a tree cannot be shifted as asked (overlapping ranges, a foreign marker)."""

    def __init__(self, message: str, path: StrPath | None = None, *, hint: str | None = None):
        super().__init__(errno.EINVAL, message, path, hint=hint)


class InvalidProfile(IsolationError):
    """EINVAL: a seccomp profile (LXC text or OCI JSON) that the runtime would refuse.
    ``line`` is the 1-based line of LXC text at fault, when there is one."""

    def __init__(
        self,
        message: str,
        path: StrPath | None = None,
        *,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(errno.EINVAL, where + message, path, hint=hint)
        self.line = line


class ToolFailed(IsolationError):
    """EIO: a helper program (gcc, apparmor_parser) failed or is missing; the message carries
    its last stderr line."""

    def __init__(self, argv: list[str], returncode: int, stderr: str, *, hint: str | None = None):
        lines = stderr.strip().splitlines()
        detail = f": {lines[-1]}" if lines else ""
        what = "was not found" if returncode == 127 else f"failed with exit status {returncode}"
        super().__init__(errno.EIO, f"{argv[0]} {what}{detail}", hint=hint)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
