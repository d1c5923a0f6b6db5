"""The vmimport package's errors: real OSErrors with an errno, a message a user can act on
and an optional hint. richc wraps them once; other callers can test ``errno`` or the class."""

from __future__ import annotations

import errno
import os


class VmImportError(OSError):
    """Base class. ``strerror`` holds the whole message, ``filename`` the path concerned."""

    default_errno = errno.EIO

    def __init__(
        self,
        message: str,
        path: str | os.PathLike[str] | None = None,
        *,
        hint: str | None = None,
    ) -> None:
        super().__init__(self.default_errno, message, None if path is None else os.fspath(path))
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ImageNotFound(VmImportError):
    """ENOENT: the image (or the block device) does not exist or cannot be opened."""

    default_errno = errno.ENOENT


class UnknownFormat(VmImportError):
    """EMEDIUMTYPE: no disk-image format, partition table or filesystem was recognised."""

    default_errno = errno.EMEDIUMTYPE


class CorruptImage(VmImportError):
    """EUCLEAN: the format was recognised but its structure is damaged (qemu-img check
    found corruptions, the file is truncated, or a conversion could not read it)."""

    default_errno = errno.EUCLEAN


class ImageInUse(VmImportError):
    """EBUSY: a running VM (or another qemu process) holds the image's write lock."""

    default_errno = errno.EBUSY


class ScratchFull(VmImportError):
    """ENOSPC: the scratch directory cannot hold the converted image. Nothing is left behind."""

    default_errno = errno.ENOSPC


class ScratchBusy(VmImportError):
    """EBUSY: another run (a live process) is using the scratch directory."""

    default_errno = errno.EBUSY


class HostUnsupported(VmImportError):
    """EOPNOTSUPP: the host lacks a kernel feature or a tool this image needs
    (device-mapper and the LVM tools, nbd, qemu-img, a filesystem driver)."""

    default_errno = errno.EOPNOTSUPP


class EncryptedRoot(VmImportError):
    """ENOKEY: the guest's root filesystem is inside a LUKS container."""

    default_errno = errno.ENOKEY


class RootNotFound(VmImportError):
    """ENOENT: no partition holds a root filesystem (/etc/fstab plus /sbin/init or
    /etc/os-release), or ``root_partition`` names a partition that is not there."""

    default_errno = errno.ENOENT


class AmbiguousRoot(VmImportError):
    """EINVAL: more than one partition looks like a root filesystem."""

    default_errno = errno.EINVAL


class MountFailed(VmImportError):
    """EIO: a filesystem the guest needs could not be mounted read-only."""

    default_errno = errno.EIO


class InvalidSource(VmImportError):
    """EINVAL: a ``--from`` value that cannot be used; ``field`` names the part at fault
    (scheme, user, host, port, path, password, query)."""

    default_errno = errno.EINVAL

    def __init__(self, field: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class SourceUnreachable(VmImportError):
    """EHOSTUNREACH: ssh could not connect or log in to the live host."""

    default_errno = errno.EHOSTUNREACH


class CopyIncomplete(VmImportError):
    """EACCES: rsync could not read some of the live host's files (not logged in as root)."""

    default_errno = errno.EACCES


class CleanupIncomplete(VmImportError):
    """EBUSY: some mounts, loop devices or volume groups could not be released; ``left``
    lists them. The leases file is kept, so a later ``cleanup()`` tries again."""

    default_errno = errno.EBUSY

    def __init__(self, message: str, left: list[str], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.left = left


class ToolFailed(VmImportError):
    """EIO: a helper program failed; the message carries its last stderr line."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        lines = stderr.strip().splitlines()
        detail = f": {lines[-1].strip()}" if lines else ""
        if returncode == 127:
            what = "was not found"
        elif returncode < 0:
            what = f"was killed by signal {-returncode}"
        else:
            what = f"failed with exit status {returncode}"
        super().__init__(f"{argv[0]} {what}{detail}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
