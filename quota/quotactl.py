"""quotactl(2) for project quotas: limits, usage and whether the kernel enforces them."""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

from quota._libc import StrPath, libc, oserror
from quota.errors import KernelTooOld, QuotaError, QuotaNotEnabled, QuotaUnsupported
from quota.mounts import EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC, Mount, find_mount, fs_magic

# <linux/quota.h>
USRQUOTA = 0
GRPQUOTA = 1
PRJQUOTA = 2
SUBCMDSHIFT = 8
Q_SYNC = 0x800001
Q_QUOTAON = 0x800002
Q_GETFMT = 0x800004
Q_GETINFO = 0x800005
Q_GETQUOTA = 0x800007
Q_SETQUOTA = 0x800008
QIF_BLIMITS = 1
QIF_SPACE = 2
QIF_ILIMITS = 4
QIF_INODES = 8
QIF_LIMITS = QIF_BLIMITS | QIF_ILIMITS
QIF_DQBLKSIZE = 1024  # dqb_*limit block fields count 1 KiB units; dqb_curspace is bytes

# <linux/dqblk_xfs.h>: Q_XGETQSTAT works for the VFS quota of ext4 too and tells
# "accounting on" from "limits enforced".
Q_XGETQSTAT = (ord("X") << 8) + 5
FS_QUOTA_PDQ_ACCT = 1 << 4
FS_QUOTA_PDQ_ENFD = 1 << 5

# <asm-generic/unistd.h>: numbers from 424 up are the same on every architecture.
SYS_quotactl_fd = 443


def qcmd(cmd: int, kind: int) -> int:
    return (cmd << SUBCMDSHIFT) | (kind & 0xFF)


class IfDqblk(ctypes.Structure):
    # <linux/quota.h> struct if_dqblk
    _fields_ = [
        ("dqb_bhardlimit", ctypes.c_uint64),
        ("dqb_bsoftlimit", ctypes.c_uint64),
        ("dqb_curspace", ctypes.c_uint64),
        ("dqb_ihardlimit", ctypes.c_uint64),
        ("dqb_isoftlimit", ctypes.c_uint64),
        ("dqb_curinodes", ctypes.c_uint64),
        ("dqb_btime", ctypes.c_uint64),
        ("dqb_itime", ctypes.c_uint64),
        ("dqb_valid", ctypes.c_uint32),
    ]


class FsQfilestat(ctypes.Structure):
    # <linux/dqblk_xfs.h> fs_qfilestat_t
    _fields_ = [
        ("qfs_ino", ctypes.c_uint64),
        ("qfs_nblks", ctypes.c_uint64),
        ("qfs_nextents", ctypes.c_uint32),
    ]


class FsQuotaStat(ctypes.Structure):
    # <linux/dqblk_xfs.h> struct fs_quota_stat
    _fields_ = [
        ("qs_version", ctypes.c_int8),
        ("qs_flags", ctypes.c_uint16),
        ("qs_pad", ctypes.c_int8),
        ("qs_uquota", FsQfilestat),
        ("qs_gquota", FsQfilestat),
        ("qs_incoredqs", ctypes.c_uint32),
        ("qs_btimelimit", ctypes.c_int32),
        ("qs_itimelimit", ctypes.c_int32),
        ("qs_rtbtimelimit", ctypes.c_int32),
        ("qs_bwarnlimit", ctypes.c_uint16),
        ("qs_iwarnlimit", ctypes.c_uint16),
    ]


libc.quotactl.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
libc.syscall.restype = ctypes.c_long

# Which mount option turns project quota enforcement on, per filesystem.
OPTION_FOR = {EXT4_SUPER_MAGIC: "prjquota", XFS_SUPER_MAGIC: "pquota"}


@dataclass(frozen=True)
class Target:
    """Where quotactl is aimed: the mount (for quotactl_fd) and its block device."""

    mount: Mount
    magic: int
    path: str  # what the caller asked about, for messages

    @classmethod
    def of(cls, path: StrPath) -> Target:
        return cls(find_mount(path), fs_magic(path), os.fspath(path))

    @property
    def option(self) -> str:
        return OPTION_FOR.get(self.magic, "prjquota")

    def describe(self) -> str:
        return f"{self.mount.fstype} on {self.mount.source} mounted at {self.mount.mount_point}"


def _call(target: Target, cmd: int, id_: int, buf: ctypes.Structure | None) -> None:
    """quotactl_fd on the mount point (no device name needed), quotactl on the device where
    the kernel predates quotactl_fd (5.14)."""
    addr = None if buf is None else ctypes.addressof(buf)
    fd = os.open(target.mount.mount_point, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
    try:
        res = libc.syscall(
            SYS_quotactl_fd,
            ctypes.c_int(fd),
            ctypes.c_uint(cmd),
            ctypes.c_int(id_),
            ctypes.c_void_p(addr),
        )
    finally:
        os.close(fd)
    err = ctypes.get_errno() if res < 0 else 0
    if err == errno.ENOSYS:
        res = libc.quotactl(cmd, os.fsencode(target.mount.source), id_, addr)
        err = ctypes.get_errno() if res < 0 else 0
    if err:
        raise _explain(err, target)


def _explain(err: int, target: Target) -> OSError:
    where = target.describe()
    if err == errno.ENOSYS:
        # Both calls missing, or the filesystem has no quota operations at all.
        if target.magic in OPTION_FOR:
            return KernelTooOld(
                f"quotactl is not available for {where}: the kernel is too old or was built "
                "without quota support for this filesystem (CONFIG_QUOTA, CONFIG_XFS_QUOTA)",
                target.mount.mount_point,
            )
        return QuotaUnsupported(
            f"{where} has no quota support",
            target.mount.mount_point,
            hint="project quotas need ext4 or xfs; use --disk-backend loop elsewhere",
        )
    if err == errno.ESRCH:
        return not_enabled(target)
    if err in (errno.EOPNOTSUPP, errno.ENOTTY):
        return QuotaUnsupported(
            f"{where} does not support project quotas", target.mount.mount_point
        )
    return oserror(err, target.mount.mount_point, "quotactl")


def not_enabled(target: Target, detail: str = "") -> QuotaNotEnabled:
    mp = target.mount.mount_point
    return QuotaNotEnabled(
        f"the filesystem holding {target.path} ({target.describe()}) is not mounted with "
        f"{target.option}{detail}",
        mp,
        hint=f"add '{target.option}' to the mount options of {mp} (fstab) and remount"
        + (
            ", on a filesystem made with 'mkfs.ext4 -O quota,project'"
            if target.magic == EXT4_SUPER_MAGIC
            else ""
        ),
    )


class IfDqinfo(ctypes.Structure):
    # <linux/quota.h> struct if_dqinfo
    _fields_ = [
        ("dqi_bgrace", ctypes.c_uint64),
        ("dqi_igrace", ctypes.c_uint64),
        ("dqi_flags", ctypes.c_uint32),
        ("dqi_valid", ctypes.c_uint32),
    ]


# The mount options under which mountinfo shows project quota enforcement.
ENFORCING_OPTIONS = ("prjquota", "pquota", "pqenforce")


def project_enforced(target: Target) -> None:
    """Raise unless the kernel accounts *and* enforces project quotas on the target.

    Q_XGETQSTAT tells both apart where the filesystem implements it; some kernels answer
    ENOSYS for it on ext4, and then Q_GETINFO (accounting on?) plus the mount options
    (enforcement on?) decide.
    """
    state = FsQuotaStat()
    try:
        _call(target, qcmd(Q_XGETQSTAT, PRJQUOTA), 0, state)
    except KernelTooOld:
        _call(target, qcmd(Q_GETINFO, PRJQUOTA), 0, IfDqinfo())
        if not target.mount.has_option(*ENFORCING_OPTIONS):
            raise not_enabled(target, " (project quota is accounted but not enforced)") from None
        return
    if not state.qs_flags & FS_QUOTA_PDQ_ACCT:
        raise not_enabled(target)
    if not state.qs_flags & FS_QUOTA_PDQ_ENFD:
        raise not_enabled(target, " (project quota is accounted but not enforced)")


def get_quota(target: Target, projid: int) -> IfDqblk:
    dq = IfDqblk()
    try:
        _call(target, qcmd(Q_GETQUOTA, PRJQUOTA), projid, dq)
    except QuotaError:
        raise
    except OSError as exc:
        # xfs has no record for an ID that never held anything: that is "all zero".
        if exc.errno != errno.ENOENT:
            raise
    return dq


def limits_struct(block_bytes: int, inodes: int | None = 0) -> IfDqblk:
    """The Q_SETQUOTA argument: hard and soft limits in bytes (rounded up to the 1 KiB
    quota block) and inodes; 0 means unlimited. ``inodes=None`` leaves the inode limits
    as they are: only QIF_BLIMITS is marked valid, so the kernel ignores the inode fields."""
    dq = IfDqblk()
    blocks = -(-block_bytes // QIF_DQBLKSIZE)
    dq.dqb_bhardlimit = dq.dqb_bsoftlimit = blocks
    if inodes is None:
        dq.dqb_valid = QIF_BLIMITS
    else:
        dq.dqb_ihardlimit = dq.dqb_isoftlimit = inodes
        dq.dqb_valid = QIF_LIMITS
    return dq


def set_limits(target: Target, projid: int, block_bytes: int, inodes: int | None = 0) -> None:
    _call(target, qcmd(Q_SETQUOTA, PRJQUOTA), projid, limits_struct(block_bytes, inodes))


def in_use(target: Target, projid: int) -> bool:
    """Whether any inode carries *projid* or a limit is set for it."""
    dq = get_quota(target, projid)
    return any(
        (
            dq.dqb_curspace,
            dq.dqb_curinodes,
            dq.dqb_bhardlimit,
            dq.dqb_bsoftlimit,
            dq.dqb_ihardlimit,
            dq.dqb_isoftlimit,
        )
    )
