"""The typed API every backend implements, and the checks they share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from quota.errors import InvalidInodeLimit, InvalidLimit, QuotaExceeded, QuotaUnsupported
from quota.mounts import find_mount

StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class Usage:
    """What the kernel counts for a tree. ``limit_inodes`` is None where nothing caps the
    number of files; ``used_inodes`` is None where the backend cannot count them."""

    limit_bytes: int
    used_bytes: int
    limit_inodes: int | None = None
    used_inodes: int | None = None


class QuotaBackend(Protocol):
    """A way to cap how much a directory tree (a container's rootfs) may hold.

    ``prepare`` creates the directory with the limit in force; some backends must create it
    themselves (a btrfs subvolume, a mounted loop image). ``set_limit`` adopts an existing
    directory where the backend can. ``remove`` undoes everything the backend made, and
    may take the directory's content with it (subvolume, image); the caller removes what
    is left of the directory afterwards. All methods are safe to repeat.

    *inodes* caps the number of files and directories. ``prepare`` and ``set_limit`` take
    None as "no inode limit"; ``resize`` takes it as "leave the inode limit as it is". A
    backend with ``inode_limits`` False refuses any inode limit (QuotaUnsupported).
    """

    name: str
    inode_limits: bool

    def check(self, path: StrPath) -> None:
        """Raise a QuotaError saying why a limit cannot be enforced for directories at
        *path* (a directory that exists: the store, or the rootfs's parent)."""

    def prepare(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None: ...

    def set_limit(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None: ...

    def usage(self, rootfs: StrPath) -> Usage: ...

    def resize(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None: ...

    def activate(self, rootfs: StrPath) -> None:
        """Make the limited directory usable again after a host reboot (mount the image)."""

    def remove(self, rootfs: StrPath) -> None: ...


def fs_size(path: StrPath) -> tuple[int, int]:
    """(total, available) bytes of the filesystem holding *path*, asked at its mount point:
    inside a project-quota tree statfs reports the project's limit instead."""
    st = os.statvfs(find_mount(existing_parent(path)).mount_point)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "K", "M", "G", "T", "P"):
        if abs(value) < 1024 or unit == "P":
            return (
                f"{value:.0f}{unit}" if unit == "B" or value == int(value) else f"{value:.1f}{unit}"
            )
        value /= 1024
    raise AssertionError("unreachable")


def validate_limit(
    limit_bytes: int, fs_path: StrPath, *, minimum: int = 1, available_only: bool = False
) -> None:
    """Refuse zero, negative and sizes the filesystem at *fs_path* cannot hold."""
    if limit_bytes <= 0:
        raise InvalidLimit(f"a disk limit must be positive, not {limit_bytes} bytes")
    if limit_bytes < minimum:
        raise InvalidLimit(
            f"a disk limit of {human(limit_bytes)} is below this backend's "
            f"minimum of {human(minimum)}"
        )
    total, available = fs_size(fs_path)
    cap, what = (available, "free on") if available_only else (total, "the size of")
    if limit_bytes > cap:
        raise InvalidLimit(
            f"a disk limit of {human(limit_bytes)} is larger than the {human(cap)} "
            f"{what} the filesystem holding {os.fspath(fs_path)}",
            fs_path,
        )


# Inode counters in quotactl are 64-bit; ext4 numbers inodes in 32 bits.
MAX_INODES = 2**32 - 1


def validate_inodes(inodes: int | None, maximum: int = MAX_INODES) -> None:
    """Refuse an inode limit that is not a positive count, or above *maximum*."""
    if inodes is None:
        return
    if isinstance(inodes, bool) or not isinstance(inodes, int) or inodes <= 0:
        raise InvalidInodeLimit(f"an inode limit must be a positive whole number, not {inodes!r}")
    if inodes > maximum:
        raise InvalidInodeLimit(f"an inode limit of {inodes} is above the maximum of {maximum}")


def no_inode_limits(backend: str, path: StrPath, why: str) -> QuotaUnsupported:
    """The refusal of a backend that can only cap bytes."""
    return QuotaUnsupported(
        f"the {backend} backend cannot limit inodes: {why}",
        path,
        hint="use --disk-backend project or loop for an inode limit, or drop --disk-inodes",
    )


def refuse_inodes_below_usage(rootfs: StrPath, inodes: int | None, used: int) -> None:
    if inodes is not None and used > inodes:
        raise QuotaExceeded(
            f"{os.fspath(rootfs)} already holds {used} inodes, more than the limit of {inodes}",
            rootfs,
            hint="remove files inside the container first, or choose a larger inode limit",
        )


def refuse_below_usage(rootfs: StrPath, limit_bytes: int, used_bytes: int) -> None:
    if used_bytes > limit_bytes:
        raise QuotaExceeded(
            f"{os.fspath(rootfs)} already holds {human(used_bytes)}, more than the limit of "
            f"{human(limit_bytes)}",
            rootfs,
            hint="free space inside the container first, or choose a larger size",
        )


def existing_parent(path: StrPath) -> Path:
    """The nearest existing directory at or above *path* (what a check can stat)."""
    p = Path(os.path.abspath(path))
    while not p.exists():
        p = p.parent
    return p
