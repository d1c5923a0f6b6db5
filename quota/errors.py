"""The quota package's errors: real OSErrors with an errno, a message a user can act on
and an optional hint. richc wraps them once; other callers can test ``errno``."""

from __future__ import annotations

import errno
import os


class QuotaError(OSError):
    """Base class. ``strerror`` holds the whole message, ``filename`` the path concerned."""

    def __init__(
        self,
        err: int,
        message: str,
        path: str | os.PathLike[str] | None = None,
        *,
        hint: str | None = None,
    ) -> None:
        super().__init__(err, message, None if path is None else os.fspath(path))
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class KernelTooOld(QuotaError):
    """ENOSYS: the running kernel lacks the system call or was built without the feature."""

    def __init__(
        self, message: str, path: str | os.PathLike[str] | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(errno.ENOSYS, message, path, hint=hint)


class QuotaUnsupported(QuotaError):
    """EOPNOTSUPP: the filesystem (or the directory's kind) cannot carry this kind of quota."""

    def __init__(
        self, message: str, path: str | os.PathLike[str] | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(errno.EOPNOTSUPP, message, path, hint=hint)


class QuotaNotEnabled(QuotaError):
    """ESRCH, as quotactl says it: the filesystem could enforce quotas but is not mounted
    (or set up) to do so. The message names the mount and the option that is missing."""

    def __init__(
        self, message: str, path: str | os.PathLike[str] | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(errno.ESRCH, message, path, hint=hint)


class QuotaExceeded(QuotaError):
    """EDQUOT: the tree already holds more than the requested limit."""

    def __init__(
        self, message: str, path: str | os.PathLike[str] | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(errno.EDQUOT, message, path, hint=hint)


class InvalidLimit(QuotaError):
    """EINVAL: a limit of zero, a negative one, or one larger than the filesystem."""

    def __init__(
        self, message: str, path: str | os.PathLike[str] | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(errno.EINVAL, message, path, hint=hint)


class InvalidInodeLimit(InvalidLimit):
    """EINVAL for the inode count: not positive, or more than the backend can hold."""


class ResizeUnsupported(QuotaError):
    """EOPNOTSUPP for one resize: the backend cannot change this limit live."""

    def __init__(
        self, message: str, path: str | os.PathLike[str] | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(errno.EOPNOTSUPP, message, path, hint=hint)


class NotManaged(QuotaError):
    """ENOENT: the backend holds no quota for this directory."""

    def __init__(
        self, message: str, path: str | os.PathLike[str] | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(errno.ENOENT, message, path, hint=hint)


class BackendUnavailable(QuotaError):
    """ENODEV: no backend (or not the requested one) can enforce a limit at the path.
    ``reasons`` maps each backend tried to why it cannot."""

    def __init__(
        self,
        message: str,
        path: str | os.PathLike[str] | None = None,
        *,
        reasons: dict[str, QuotaError] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(errno.ENODEV, message, path, hint=hint)
        self.reasons = dict(reasons or {})


class ToolFailed(QuotaError):
    """EIO: a helper program (mkfs.ext4) failed; the message carries its last stderr line."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        lines = stderr.strip().splitlines()
        detail = f": {lines[-1]}" if lines else ""
        what = "was not found" if returncode == 127 else f"failed with exit status {returncode}"
        super().__init__(errno.EIO, f"{argv[0]} {what}{detail}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
