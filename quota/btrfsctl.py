"""btrfs ioctls: subvolumes, quota (qgroups) on/off, limits and usage."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass

from quota._libc import IO, IOR, IOW, IOWR, StrPath, ioctl, opened

# <linux/btrfs.h>
BTRFS_IOCTL_MAGIC = 0x94
BTRFS_PATH_NAME_MAX = 4087
BTRFS_INO_LOOKUP_PATH_MAX = 4080
BTRFS_SEARCH_ARGS_BUFSIZE = 4096 - 104
BTRFS_QUOTA_CTL_ENABLE = 1
BTRFS_QUOTA_CTL_DISABLE = 2
BTRFS_QGROUP_LIMIT_MAX_RFER = 1 << 0
# <fs/btrfs/qgroup.c>: a limit field of all ones clears that limit.
BTRFS_QGROUP_LIMIT_CLEAR = 2**64 - 1
# <linux/btrfs_tree.h>
BTRFS_QUOTA_TREE_OBJECTID = 8
BTRFS_FIRST_FREE_OBJECTID = 256  # inode number of every subvolume's root directory
BTRFS_QGROUP_STATUS_KEY = 240
BTRFS_QGROUP_INFO_KEY = 242
BTRFS_QGROUP_LIMIT_KEY = 244


class VolArgs(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int64), ("name", ctypes.c_char * (BTRFS_PATH_NAME_MAX + 1))]


class QuotaCtlArgs(ctypes.Structure):
    _fields_ = [("cmd", ctypes.c_uint64), ("status", ctypes.c_uint64)]


class QgroupLimit(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("max_rfer", ctypes.c_uint64),
        ("max_excl", ctypes.c_uint64),
        ("rsv_rfer", ctypes.c_uint64),
        ("rsv_excl", ctypes.c_uint64),
    ]


class QgroupLimitArgs(ctypes.Structure):
    _fields_ = [("qgroupid", ctypes.c_uint64), ("lim", QgroupLimit)]


class QgroupCreateArgs(ctypes.Structure):
    _fields_ = [("create", ctypes.c_uint64), ("qgroupid", ctypes.c_uint64)]


class InoLookupArgs(ctypes.Structure):
    _fields_ = [
        ("treeid", ctypes.c_uint64),
        ("objectid", ctypes.c_uint64),
        ("name", ctypes.c_char * BTRFS_INO_LOOKUP_PATH_MAX),
    ]


class SubvolWait(ctypes.Structure):
    _fields_ = [
        ("subvolid", ctypes.c_uint64),
        ("mode", ctypes.c_uint32),
        ("count", ctypes.c_uint32),
    ]


class SearchKey(ctypes.Structure):
    _fields_ = [
        ("tree_id", ctypes.c_uint64),
        ("min_objectid", ctypes.c_uint64),
        ("max_objectid", ctypes.c_uint64),
        ("min_offset", ctypes.c_uint64),
        ("max_offset", ctypes.c_uint64),
        ("min_transid", ctypes.c_uint64),
        ("max_transid", ctypes.c_uint64),
        ("min_type", ctypes.c_uint32),
        ("max_type", ctypes.c_uint32),
        ("nr_items", ctypes.c_uint32),
        ("unused", ctypes.c_uint32),
        ("unused1", ctypes.c_uint64),
        ("unused2", ctypes.c_uint64),
        ("unused3", ctypes.c_uint64),
        ("unused4", ctypes.c_uint64),
    ]


class SearchArgs(ctypes.Structure):
    _fields_ = [("key", SearchKey), ("buf", ctypes.c_char * BTRFS_SEARCH_ARGS_BUFSIZE)]


BTRFS_IOC_SYNC = IO(BTRFS_IOCTL_MAGIC, 8)
BTRFS_IOC_SUBVOL_CREATE = IOW(BTRFS_IOCTL_MAGIC, 14, VolArgs)
BTRFS_IOC_SNAP_DESTROY = IOW(BTRFS_IOCTL_MAGIC, 15, VolArgs)
BTRFS_IOC_TREE_SEARCH = IOWR(BTRFS_IOCTL_MAGIC, 17, SearchArgs)
BTRFS_IOC_INO_LOOKUP = IOWR(BTRFS_IOCTL_MAGIC, 18, InoLookupArgs)
BTRFS_IOC_QUOTA_CTL = IOWR(BTRFS_IOCTL_MAGIC, 40, QuotaCtlArgs)
BTRFS_IOC_QGROUP_CREATE = IOW(BTRFS_IOCTL_MAGIC, 42, QgroupCreateArgs)
# Declared _IOR in the header although the kernel reads it: keep the number as it is.
BTRFS_IOC_QGROUP_LIMIT = IOR(BTRFS_IOCTL_MAGIC, 43, QgroupLimitArgs)
BTRFS_IOC_SUBVOL_SYNC_WAIT = IOW(BTRFS_IOCTL_MAGIC, 65, SubvolWait)  # 6.8+
BTRFS_SUBVOL_SYNC_WAIT_FOR_ONE = 0

# struct btrfs_ioctl_search_header, then the item; items are little-endian on disk.
_SEARCH_HEADER = struct.Struct("=QQQII")
_QGROUP_INFO = struct.Struct("<QQQQQ")  # generation, rfer, rfer_cmpr, excl, excl_cmpr
_QGROUP_LIMIT = struct.Struct("<QQQQQ")  # flags, max_rfer, max_excl, rsv_rfer, rsv_excl

_DIR = os.O_RDONLY | os.O_DIRECTORY


def _name_args(name: str) -> VolArgs:
    raw = os.fsencode(name)
    if not raw or b"/" in raw or raw in (b".", b"..") or len(raw) > BTRFS_PATH_NAME_MAX:
        raise OSError(errno.EINVAL, f"invalid subvolume name {name!r}")
    args = VolArgs()
    args.name = raw
    return args


def subvolume_create(path: StrPath) -> None:
    parent, name = os.path.split(os.path.abspath(path))
    with opened(parent, _DIR) as fd:
        ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, _name_args(name), path, "BTRFS_IOC_SUBVOL_CREATE")


def subvolume_delete(path: StrPath) -> None:
    """Delete the subvolume at *path* with everything in it (nested subvolumes excepted)."""
    parent, name = os.path.split(os.path.abspath(path))
    with opened(parent, _DIR) as fd:
        ioctl(fd, BTRFS_IOC_SNAP_DESTROY, _name_args(name), path, "BTRFS_IOC_SNAP_DESTROY")


def is_subvolume(path: StrPath) -> bool:
    st = os.lstat(path)
    return st.st_ino == BTRFS_FIRST_FREE_OBJECTID and os.path.isdir(path)


def subvolume_id(path: StrPath) -> int:
    """The tree ID of the subvolume holding *path* (its level-0 qgroup is 0/ID)."""
    args = InoLookupArgs(treeid=0, objectid=BTRFS_FIRST_FREE_OBJECTID)
    with opened(path, _DIR) as fd:
        ioctl(fd, BTRFS_IOC_INO_LOOKUP, args, path, "BTRFS_IOC_INO_LOOKUP")
    return int(args.treeid)


def quota_enable(path: StrPath) -> None:
    """Turn qgroups on for the whole filesystem; a no-op when they are on already."""
    with opened(path, _DIR) as fd:
        ioctl(
            fd,
            BTRFS_IOC_QUOTA_CTL,
            QuotaCtlArgs(cmd=BTRFS_QUOTA_CTL_ENABLE),
            path,
            "BTRFS_IOC_QUOTA_CTL",
        )


def _search(path: StrPath, key_type: int, offset: int, objectid: int = 0) -> list[bytes]:
    """Items of one exact key in the quota tree (the search range is inclusive)."""
    args = SearchArgs()
    k = args.key
    k.tree_id = BTRFS_QUOTA_TREE_OBJECTID
    k.min_objectid = k.max_objectid = objectid
    k.min_type = k.max_type = key_type
    k.min_offset = k.max_offset = offset
    k.max_transid = 2**64 - 1
    k.nr_items = 16
    with opened(path, _DIR) as fd:
        ioctl(fd, BTRFS_IOC_TREE_SEARCH, args, path, "BTRFS_IOC_TREE_SEARCH")
    raw = bytes(args)[ctypes.sizeof(SearchKey) :]
    items, pos = [], 0
    for _ in range(args.key.nr_items):
        _, obj, off, typ, length = _SEARCH_HEADER.unpack_from(raw, pos)
        pos += _SEARCH_HEADER.size
        if (obj, typ, off) == (objectid, key_type, offset):
            items.append(raw[pos : pos + length])
        pos += length
    return items


def quota_enabled(path: StrPath) -> bool:
    try:
        return bool(_search(path, BTRFS_QGROUP_STATUS_KEY, 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:  # no quota tree: qgroups were never enabled
            return False
        raise


@dataclass(frozen=True)
class QgroupInfo:
    referenced: int
    exclusive: int
    max_referenced: int | None  # None: no limit


def qgroup_info(path: StrPath, qgroupid: int) -> QgroupInfo:
    """Usage and limit of a qgroup as last committed (call syncfs first for fresh numbers)."""
    info = _search(path, BTRFS_QGROUP_INFO_KEY, qgroupid)
    if not info:
        raise OSError(errno.ENOENT, f"no qgroup 0/{qgroupid} on this filesystem", os.fspath(path))
    _, rfer, _, excl, _ = _QGROUP_INFO.unpack_from(info[0])
    max_rfer = None
    for item in _search(path, BTRFS_QGROUP_LIMIT_KEY, qgroupid):
        flags, limit, *_ = _QGROUP_LIMIT.unpack_from(item)
        if flags & BTRFS_QGROUP_LIMIT_MAX_RFER:
            max_rfer = limit
    return QgroupInfo(rfer, excl, max_rfer)


def qgroup_limit(path: StrPath, max_referenced: int | None) -> None:
    """Limit the referenced bytes of the subvolume holding *path*; None clears the limit.
    qgroupid 0 in the request means "the subvolume the fd is in"."""
    args = QgroupLimitArgs(qgroupid=0)
    args.lim.flags = BTRFS_QGROUP_LIMIT_MAX_RFER
    args.lim.max_rfer = BTRFS_QGROUP_LIMIT_CLEAR if max_referenced is None else max_referenced
    with opened(path, _DIR) as fd:
        ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, args, path, "BTRFS_IOC_QGROUP_LIMIT")


def qgroup_destroy(path: StrPath, qgroupid: int) -> None:
    """Remove a qgroup. Kernels refuse (EBUSY) while a deleted subvolume's blocks are still
    being freed; newer ones also drop the qgroup by themselves once that is done."""
    with opened(path, _DIR) as fd:
        ioctl(
            fd,
            BTRFS_IOC_QGROUP_CREATE,
            QgroupCreateArgs(create=0, qgroupid=qgroupid),
            path,
            "BTRFS_IOC_QGROUP_CREATE",
        )


def sync(path: StrPath) -> None:
    """Commit, and wake the cleaner thread: without the nudge a deleted subvolume waits
    for the next periodic commit (30 s) before its space and qgroup are freed."""
    with opened(path, _DIR) as fd:
        ioctl(fd, BTRFS_IOC_SYNC, 0, path, "BTRFS_IOC_SYNC")


def subvolume_sync_wait(path: StrPath, subvolid: int) -> bool:
    """Wait until the cleaner has freed a deleted subvolume (then newer kernels drop its
    qgroup too). False when the kernel predates the ioctl."""
    args = SubvolWait(subvolid=subvolid, mode=BTRFS_SUBVOL_SYNC_WAIT_FOR_ONE)
    with opened(path, _DIR) as fd:
        try:
            ioctl(fd, BTRFS_IOC_SUBVOL_SYNC_WAIT, args, path, "BTRFS_IOC_SUBVOL_SYNC_WAIT")
        except OSError as exc:
            if exc.errno in (errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP):
                return False
            if exc.errno == errno.ENOENT:  # already cleaned
                return True
            raise
    return True
