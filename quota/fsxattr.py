"""Project IDs on inodes: FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR (ext4 and xfs)."""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from dataclasses import dataclass

from quota._libc import IOR, IOW, StrPath, ioctl
from quota.errors import QuotaUnsupported


class FsXattr(ctypes.Structure):
    # <linux/fs.h> struct fsxattr
    _fields_ = [
        ("fsx_xflags", ctypes.c_uint32),
        ("fsx_extsize", ctypes.c_uint32),
        ("fsx_nextents", ctypes.c_uint32),
        ("fsx_projid", ctypes.c_uint32),
        ("fsx_cowextsize", ctypes.c_uint32),
        ("fsx_pad", ctypes.c_ubyte * 8),
    ]


# <linux/fs.h>
FS_IOC_FSGETXATTR = IOR("X", 31, FsXattr)
FS_IOC_FSSETXATTR = IOW("X", 32, FsXattr)
FS_XFLAG_PROJINHERIT = 0x00000200  # new inodes in this directory take its project ID


def _unsupported(exc: OSError, path: StrPath) -> OSError:
    # ENOTTY: the filesystem has no fsxattr ioctl at all; EOPNOTSUPP: it has one but no
    # project IDs (btrfs, or ext4 made without the "project" feature).
    if exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP):
        return QuotaUnsupported(
            f"cannot set a project ID on {os.fspath(path)}: the filesystem does not support "
            "project IDs",
            path,
            hint="project quotas need xfs, or ext4 created with 'mkfs.ext4 -O quota,project'",
        )
    return exc


def get_fsxattr(fd: int, path: StrPath) -> FsXattr:
    attr = FsXattr()
    try:
        ioctl(fd, FS_IOC_FSGETXATTR, attr, path, "FS_IOC_FSGETXATTR")
    except OSError as exc:
        raise _unsupported(exc, path) from None
    return attr


def set_project_fd(fd: int, path: StrPath, projid: int, inherit: bool) -> None:
    attr = get_fsxattr(fd, path)
    flags = attr.fsx_xflags | FS_XFLAG_PROJINHERIT if inherit else attr.fsx_xflags
    if attr.fsx_projid == projid and flags == attr.fsx_xflags:
        return
    attr.fsx_projid = projid
    attr.fsx_xflags = flags
    try:
        ioctl(fd, FS_IOC_FSSETXATTR, attr, path, "FS_IOC_FSSETXATTR")
    except OSError as exc:
        raise _unsupported(exc, path) from None


def get_project(path: StrPath) -> tuple[int, bool]:
    """(project ID, inherit flag) of *path*."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        attr = get_fsxattr(fd, path)
    finally:
        os.close(fd)
    return attr.fsx_projid, bool(attr.fsx_xflags & FS_XFLAG_PROJINHERIT)


@dataclass
class RelabelReport:
    labelled: int = 0
    skipped: int = 0  # sockets, FIFOs, devices, symlinks and other mounts


def relabel_tree(root: StrPath, projid: int) -> RelabelReport:
    """Give every directory and regular file under *root* the project ID, and directories
    the inherit flag, so files created later land in the same project.

    Sockets, FIFOs and device nodes are skipped: opening a FIFO can block, and neither kind
    holds data blocks. Symlinks cannot be opened for the ioctl; they are skipped too (new
    ones inherit the ID from their directory). Other filesystems mounted below are not
    crossed.
    """
    report = RelabelReport()
    root_dev = os.lstat(root).st_dev
    pending = [os.fspath(root)]
    while pending:
        path = pending.pop()
        st = os.lstat(path)
        is_dir = stat.S_ISDIR(st.st_mode)
        if not (is_dir or stat.S_ISREG(st.st_mode)) or st.st_dev != root_dev:
            report.skipped += 1
            continue
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            set_project_fd(fd, path, projid, inherit=is_dir)
        finally:
            os.close(fd)
        report.labelled += 1
        if is_dir:
            with os.scandir(path) as entries:
                pending.extend(entry.path for entry in entries)
    return report
