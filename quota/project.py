"""Project quota backend: ext4 (prjquota) and xfs (pquota) through fsxattr + quotactl."""

from __future__ import annotations

import os
from pathlib import Path

from quota import quotactl
from quota.backend import StrPath, Usage, existing_parent, refuse_below_usage, validate_limit
from quota.errors import NotManaged, QuotaUnsupported
from quota.fsxattr import relabel_tree
from quota.mounts import EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC
from quota.registry import FIRST_ID, ProjectRegistry


class ProjectBackend:
    """Tags the tree with a project ID (inherited by new files) and lets the kernel cap
    the project's blocks. ``statfs`` inside the tree then reports the limit as the size,
    so ``df /`` in the container shows it."""

    name = "project"

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

    def prepare(self, rootfs: StrPath, limit_bytes: int) -> None:
        self.check(Path(rootfs).parent)
        validate_limit(limit_bytes, Path(rootfs).parent)
        Path(rootfs).mkdir(parents=True, exist_ok=True)
        try:
            self.set_limit(rootfs, limit_bytes)
        except BaseException:
            self.remove(rootfs)
            raise

    def set_limit(self, rootfs: StrPath, limit_bytes: int) -> None:
        self.check(rootfs)
        validate_limit(limit_bytes, rootfs)
        target = quotactl.Target.of(rootfs)
        known = self.registry.lookup(rootfs) is not None
        projid = self.registry.allocate(rootfs, lambda i: quotactl.in_use(target, i))
        try:
            relabel_tree(rootfs, projid)
            used = quotactl.get_quota(target, projid).dqb_curspace
            refuse_below_usage(rootfs, limit_bytes, used)
            quotactl.set_limits(target, projid, limit_bytes)
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
        return Usage(dq.dqb_bhardlimit * quotactl.QIF_DQBLKSIZE, dq.dqb_curspace)

    def resize(self, rootfs: StrPath, limit_bytes: int) -> None:
        target, projid = self._project(rootfs)
        validate_limit(limit_bytes, rootfs)
        refuse_below_usage(rootfs, limit_bytes, quotactl.get_quota(target, projid).dqb_curspace)
        quotactl.set_limits(target, projid, limit_bytes)

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
