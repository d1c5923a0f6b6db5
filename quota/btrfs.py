"""btrfs backend: the rootfs is a subvolume whose qgroup carries the limit."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from quota import btrfsctl
from quota.backend import (
    StrPath,
    Usage,
    existing_parent,
    no_inode_limits,
    refuse_below_usage,
    validate_limit,
)
from quota.errors import KernelTooOld, NotManaged, QuotaNotEnabled, QuotaUnsupported
from quota.mounts import BTRFS_SUPER_MAGIC, find_mount, fs_magic, fs_name, syncfs


class BtrfsBackend:
    """``enable_quota``: turn qgroups on for the filesystem when they are off. Asking for a
    disk limit on a btrfs store is asking for that; without it, a filesystem with qgroups
    off is reported as not set up."""

    name = "btrfs"
    inode_limits = False

    def __init__(self, enable_quota: bool = True) -> None:
        self.enable_quota = enable_quota

    def check(self, path: StrPath) -> None:
        where = existing_parent(path)
        if fs_magic(where) != BTRFS_SUPER_MAGIC:
            raise QuotaUnsupported(
                f"the filesystem holding {os.fspath(path)} is {fs_name(where)}, not btrfs",
                path,
                hint="put the store on btrfs, or use --disk-backend loop",
            )
        if not self.enable_quota and not btrfsctl.quota_enabled(where):
            mp = find_mount(where).mount_point
            raise QuotaNotEnabled(
                f"btrfs quota (qgroups) is not enabled on {mp}",
                mp,
                hint=f"run 'btrfs quota enable {mp}'",
            )

    @staticmethod
    def _refuse_inodes(rootfs: StrPath, inodes: int | None) -> None:
        if inodes is not None:
            raise no_inode_limits("btrfs", rootfs, "btrfs qgroups count bytes, not files")

    def prepare(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None:
        parent = Path(rootfs).parent
        self._refuse_inodes(rootfs, inodes)
        self.check(parent)
        validate_limit(limit_bytes, parent)
        if not btrfsctl.quota_enabled(parent):
            btrfsctl.quota_enable(parent)
        if os.path.lexists(rootfs):
            if not btrfsctl.is_subvolume(rootfs) or any(os.scandir(rootfs)):
                raise FileExistsError(
                    errno.EEXIST, "exists and is not an empty subvolume", os.fspath(rootfs)
                )
        else:
            btrfsctl.subvolume_create(rootfs)
        try:
            self.set_limit(rootfs, limit_bytes)
        except BaseException:
            self.remove(rootfs)
            raise

    def _require_subvolume(self, rootfs: StrPath) -> None:
        self.check(rootfs)
        if not btrfsctl.is_subvolume(rootfs):
            raise QuotaUnsupported(
                f"{os.fspath(rootfs)} is a plain directory, not a btrfs subvolume",
                rootfs,
                hint="the btrfs backend limits subvolumes; let it create the rootfs",
            )

    def set_limit(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None:
        self._refuse_inodes(rootfs, inodes)
        self._require_subvolume(rootfs)
        validate_limit(limit_bytes, rootfs)
        refuse_below_usage(rootfs, limit_bytes, self._info(rootfs).referenced)
        try:
            btrfsctl.qgroup_limit(rootfs, limit_bytes)
        except OSError as exc:
            if exc.errno == errno.ENOTCONN:  # "quota not enabled"
                raise QuotaNotEnabled(
                    f"btrfs quota is not enabled for {os.fspath(rootfs)}", rootfs
                ) from None
            raise

    def _info(self, rootfs: StrPath) -> btrfsctl.QgroupInfo:
        syncfs(rootfs)  # qgroup numbers are only brought up to date at commit
        return btrfsctl.qgroup_info(rootfs, btrfsctl.subvolume_id(rootfs))

    def usage(self, rootfs: StrPath) -> Usage:
        if not os.path.isdir(rootfs) or not btrfsctl.is_subvolume(rootfs):
            raise NotManaged(f"{os.fspath(rootfs)} is not a btrfs subvolume", rootfs)
        info = self._info(rootfs)
        return Usage(info.max_referenced or 0, info.referenced)

    def resize(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None:
        self.set_limit(rootfs, limit_bytes, inodes)

    def activate(self, rootfs: StrPath) -> None:
        self._require_subvolume(rootfs)

    def remove(self, rootfs: StrPath) -> None:
        """Clear the limit, delete the subvolume with its content, and drop its qgroup
        where the kernel allows it yet."""
        if not os.path.lexists(rootfs) or not btrfsctl.is_subvolume(rootfs):
            return
        subvol = btrfsctl.subvolume_id(rootfs)
        parent = Path(rootfs).parent
        try:
            btrfsctl.qgroup_limit(rootfs, None)
        except OSError as exc:
            if exc.errno not in (errno.ENOTCONN, errno.ENOENT):
                raise
        btrfsctl.subvolume_delete(rootfs)
        _drop_qgroup(parent, subvol)


def _drop_qgroup(parent: Path, subvol: int, attempts: int = 20) -> None:
    """Remove the deleted subvolume's qgroup so no stale 0/ID is left. The kernel refuses
    (EBUSY) until the cleaner has freed the subvolume's blocks; each commit moves that on,
    so wait for the cleaner where the kernel can (6.8+, which then drops the qgroup by
    itself), else retry a few times and leave the rest to the kernel."""
    btrfsctl.sync(parent)
    btrfsctl.subvolume_sync_wait(parent, subvol)
    for _ in range(attempts):
        try:
            btrfsctl.qgroup_destroy(parent, subvol)
            return
        except KernelTooOld:
            raise
        except OSError as exc:
            # ENOENT: already gone; ENOTCONN: quota off; EINVAL: no such qgroup.
            if exc.errno in (errno.ENOENT, errno.ENOTCONN, errno.EINVAL):
                return
            if exc.errno != errno.EBUSY:
                raise
        btrfsctl.sync(parent)
        time.sleep(0.05)
