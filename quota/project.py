"""Project quota backend: ext4 (prjquota) and xfs (pquota) through fsxattr + quotactl."""

from __future__ import annotations

import os
from pathlib import Path

from quota import quotactl
from quota.backend import (
    StrPath,
    Usage,
    existing_parent,
    refuse_below_usage,
    refuse_inodes_below_usage,
    validate_inodes,
    validate_limit,
)
from quota.errors import NotManaged, QuotaUnsupported
from quota.fsxattr import relabel_tree
from quota.mounts import EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC
from quota.registry import FIRST_ID, ProjectRegistry


class ProjectBackend:
    """Tags the tree with a project ID (inherited by new files) and lets the kernel cap
    the project's blocks and inodes. ``statfs`` inside the tree then reports the limits as
    the size and the inode count, so ``df /`` and ``df -i /`` in the container show them."""

    name = "project"
    inode_limits = True

    def __init__(self, registry: StrPath, first_id: int = FIRST_ID) -> None:
        self.registry = ProjectRegistry(registry, first_id)

    def check(self, path: StrPath) -> None:
        target = quotactl.Target.of(existing_parent(path))
        if target.magic not in (EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC):
            raise QuotaUnsupported(
                f"the filesystem holding {os.fspath(path)} is {target.mount.fstype}, which has "
                "no project quotas",
                path,
                hint="project quotas need ext4 or xfs; use --disk-backend btrfs on btrfs or "
                "--disk-backend loop elsewhere",
            )
        quotactl.project_enforced(target)

    def prepare(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None:
        self.check(Path(rootfs).parent)
        validate_limit(limit_bytes, Path(rootfs).parent)
        validate_inodes(inodes)
        Path(rootfs).mkdir(parents=True, exist_ok=True)
        try:
            self.set_limit(rootfs, limit_bytes, inodes)
        except BaseException:
            self.remove(rootfs)
            raise

    def set_limit(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None:
        self.check(rootfs)
        validate_limit(limit_bytes, rootfs)
        validate_inodes(inodes)
        target = quotactl.Target.of(rootfs)
        known = self.registry.lookup(rootfs) is not None
        projid = self.registry.allocate(rootfs, lambda i: quotactl.in_use(target, i))
        try:
            relabel_tree(rootfs, projid)
            dq = quotactl.get_quota(target, projid)
            refuse_below_usage(rootfs, limit_bytes, dq.dqb_curspace)
            refuse_inodes_below_usage(rootfs, inodes, dq.dqb_curinodes)
            quotactl.set_limits(target, projid, limit_bytes, inodes or 0)
        except BaseException:
            if not known:
                # Files already relabelled keep the ID busy in the kernel's eyes, so the
                # allocator will not hand it out again while they exist.
                self.registry.release(rootfs)
            raise

    def _project(self, rootfs: StrPath) -> tuple[quotactl.Target, int]:
        projid = self.registry.lookup(rootfs)
        if projid is None:
            raise NotManaged(f"{os.fspath(rootfs)} has no project quota recorded", rootfs)
        return quotactl.Target.of(rootfs), projid

    def usage(self, rootfs: StrPath) -> Usage:
        target, projid = self._project(rootfs)
        dq = quotactl.get_quota(target, projid)
        return Usage(
            dq.dqb_bhardlimit * quotactl.QIF_DQBLKSIZE,
            dq.dqb_curspace,
            limit_inodes=dq.dqb_ihardlimit or None,
            used_inodes=dq.dqb_curinodes,
        )

    def resize(self, rootfs: StrPath, limit_bytes: int, inodes: int | None = None) -> None:
        target, projid = self._project(rootfs)
        validate_limit(limit_bytes, rootfs)
        validate_inodes(inodes)
        dq = quotactl.get_quota(target, projid)
        refuse_below_usage(rootfs, limit_bytes, dq.dqb_curspace)
        refuse_inodes_below_usage(rootfs, inodes, dq.dqb_curinodes)
        quotactl.set_limits(target, projid, limit_bytes, inodes)

    def activate(self, rootfs: StrPath) -> None:
        # Limits live in the filesystem's quota files; nothing to do after a reboot.
        self.check(rootfs)

    def remove(self, rootfs: StrPath) -> None:
        """Clear the limit and forget the ID. Files still tagged with it keep the ID
        reserved: the allocator skips IDs the kernel still counts."""
        projid = self.registry.lookup(rootfs)
        if projid is None:
            return
        if os.path.exists(rootfs):
            quotactl.set_limits(quotactl.Target.of(rootfs), projid, 0)
        else:
            # The tree is gone already; the limit sits on the filesystem that held it.
            quotactl.set_limits(quotactl.Target.of(existing_parent(rootfs)), projid, 0)
        self.registry.release(rootfs)
