"""The guest's tree, assembled read-only from a disk image, for the caller to copy."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vmimport import image as disk_image
from vmimport import lvm
from vmimport.errors import MountFailed, RootNotFound, VmImportError
from vmimport.image import AttachMethod, ImageInfo
from vmimport.leases import Leases, locked
from vmimport.root import (
    NOT_FOUND,
    Dropped,
    MountPlan,
    RootCandidate,
    choose_root,
    encrypted_root,
    plan_mounts,
    resolve_in,
)
from vmimport.tools import Progress
from vmimport.volumes import Volume, discover, probe

TREE = "tree"
PROBE = "probe"


@dataclass(frozen=True)
class MountedTree:
    """The assembled tree. ``os.fspath(tree)`` is its directory."""

    path: Path
    image: ImageInfo
    volumes: tuple[Volume, ...]
    plan: MountPlan

    def __fspath__(self) -> str:
        return str(self.path)

    def report(self) -> dict[str, Any]:
        """Plain data for the migration report (JSON-ready): the image, the root, what
        was mounted from where and what the guest's fstab asked for that was left out."""

        def volume(v: Volume) -> dict[str, Any]:
            lv = f"{v.lv.vg}/{v.lv.lv}" if v.lv else None
            return {"volume": v.describe(), "partition": v.number, "logical_volume": lv,
                    "fstype": v.fstype, "uuid": v.uuid, "size": v.size}  # fmt: skip

        return {
            "image": {
                "path": str(self.image.path),
                "format": self.image.format.value,
                "size": self.image.size,
                "backing_chain": list(self.image.backing_chain),
                "warnings": list(self.image.warnings),
            },
            "os_release": self.plan.os_release,
            "mounts": [
                {"target": m.target, "spec": m.spec, "options": list(m.options), **volume(m.volume)}
                for m in (self.plan.root, *self.plan.mounts)
            ],
            "dropped": [
                {"target": d.target, "spec": d.spec, "fstype": d.fstype, "reason": d.reason}
                for d in self.plan.dropped
            ],
        }


def _activate_lvm(volumes: list[Volume], leases: Leases) -> list[Volume]:
    """Activate the image's volume groups read-only; return their logical volumes."""
    pvs = [v.device for v in volumes if v.is_lvm()]
    lvm.host_support()
    vgs = lvm.volume_groups(pvs)
    if not vgs:
        return []
    lvm.check_names(vgs, lvm.host_volume_groups(exclude=pvs))
    leases.activate_vgs(vgs, pvs)
    return [probe(lv.dm_path, lv=lv) for lv in lvm.logical_volumes(pvs)]


def _mount_plan(plan: MountPlan, tree: Path, leases: Leases) -> MountPlan:
    """Mount root then the rest, parents first. A mount point the root filesystem lacks
    cannot be made on a read-only mount: that entry is dropped with its reason."""
    root = plan.root
    try:
        leases.mount(root.volume.device, tree, root.fstype, root.options)
    except OSError as exc:
        raise MountFailed(
            f"the root ({root.volume.describe()}, {root.fstype}) cannot be mounted: {exc.strerror}",
            root.volume.device,
        ) from None
    done, dropped = [], list(plan.dropped)
    for mount in plan.mounts:
        where = resolve_in(tree, mount.target)
        if not where.is_dir() or where.is_symlink():
            reason = "its mount point is missing from the root filesystem"
            dropped.append(Dropped(mount.target, mount.spec, mount.fstype, reason))
            continue
        try:
            leases.mount(mount.volume.device, where, mount.fstype, mount.options)
        except OSError as exc:
            if is_boot(mount.target):
                # A container does not boot from /boot or the EFI partition: one this
                # kernel cannot mount (vfat on this project's CI kernel) is reported, and
                # the import goes on.
                reason = f"not mountable here ({exc.strerror}); a container does not boot from it"
                dropped.append(Dropped(mount.target, mount.spec, mount.fstype, reason))
                continue
            raise MountFailed(
                f"{mount.target} ({mount.volume.describe()}, {mount.fstype}) cannot be "
                f"mounted read-only: {exc.strerror}",
                mount.volume.device,
                hint="the kernel may lack this filesystem's driver, or the filesystem is "
                "damaged (fsck a copy of the image)",
            ) from None
        done.append(mount)
    return replace(plan, mounts=tuple(done), dropped=tuple(dropped))


@contextlib.contextmanager
def mounted_tree(
    image: str | os.PathLike[str],
    scratch_dir: str | os.PathLike[str],
    root_partition: int | str | None = None,
    progress: Progress | None = None,
    *,
    attach_method: AttachMethod = AttachMethod.AUTO,
) -> Iterator[MountedTree]:
    """Assemble the guest's tree from *image* read-only and yield it.

    The root is mounted at SCRATCH/tree and every fstab filesystem found on the image
    (/boot, /var, /home, ...) below it; LVM volume groups are activated read-only where
    needed. On exit, however it comes, everything is released newest first: mounts, LVM,
    partition and disk loop devices, nbd, the converted copy. Each of those is written to
    SCRATCH/leases.jsonl before it is made, so after a SIGKILL :func:`cleanup` (or the next
    run with the same scratch directory) releases what was left.

    *root_partition* overrides the search: a partition number, 0 for a partitionless
    image, or "VG/LV". *progress* hears about the conversion, if there is one.
    """
    scratch = Path(scratch_dir).absolute()
    with locked(scratch) as leases:
        try:
            info = disk_image.inspect(image)
            disk = disk_image.attach(info, leases, method=attach_method, progress=progress)
            volumes = discover(disk, leases)
            probe_dir = leases.make_dir(scratch / PROBE)
            root, volumes, lvm_active = _find_root(info, volumes, probe_dir, leases, root_partition)
            plan = plan_mounts(root, volumes)
            if not lvm_active and any(v.is_lvm() for v in volumes) and _may_be_lvm(plan):
                volumes += _activate_lvm(volumes, leases)
                plan = plan_mounts(root, volumes)
            tree = leases.make_dir(scratch / TREE)
            plan = _mount_plan(plan, tree, leases)
            yield MountedTree(tree, info, tuple(volumes), plan)
        except BaseException:
            _release_keeping_first_error(leases)
            raise
        leases.release_all()


def _find_root(
    info: ImageInfo,
    volumes: list[Volume],
    probe_dir: Path,
    leases: Leases,
    root_partition: int | str | None,
) -> tuple[RootCandidate, list[Volume], bool]:
    """The root, the volumes (with logical volumes, once LVM had to be activated to find
    it) and whether LVM is active. Raise EncryptedRoot or RootNotFound."""
    has_pvs = any(v.is_lvm() for v in volumes)
    lvm_active = False
    unmountable: list[str] = []
    root = None
    if not (has_pvs and isinstance(root_partition, str) and "/" in root_partition):
        root = choose_root(volumes, probe_dir, leases, root_partition, unmountable)
    if root is None and has_pvs:
        lvs = _activate_lvm(volumes, leases)
        volumes, lvm_active = volumes + lvs, True
        root = choose_root(lvs, probe_dir, leases, root_partition, unmountable)
    if root is not None:
        return root, volumes, lvm_active
    luks = [v for v in volumes if v.is_luks()]
    if luks:
        raise encrypted_root(luks[0])
    hint = f"volumes found: {_listing(volumes)}; choose one with --root-partition N"
    failed = ""
    if unmountable:
        failed = f"; could not be mounted: {'; '.join(unmountable)}"
        hint = (
            "this kernel may lack the filesystem's driver or one of its features (xfs v4, "
            "from CentOS 6 days, needs CONFIG_XFS_SUPPORT_V4), or the filesystem is damaged: "
            "fsck a copy of the image; " + hint
        )
    raise RootNotFound(
        "no volume on the image holds a root filesystem (/etc/fstab with /sbin/init or "
        f"/etc/os-release){failed}",
        info.path,
        hint=hint,
    )


def is_boot(target: str) -> bool:
    return target == "/boot" or target.startswith("/boot/")


def _listing(volumes: list[Volume]) -> str:
    return ", ".join(f"{v.describe()}: {v.fstype or 'unknown'}" for v in volumes) or "none"


def _may_be_lvm(plan: MountPlan) -> bool:
    return any(d.reason.startswith(NOT_FOUND) for d in plan.dropped)


def _release_keeping_first_error(leases: Leases) -> None:
    # The error that got us here matters more than one from cleaning up after it; a
    # failed release stays in the leases file for cleanup() to retry.
    with contextlib.suppress(VmImportError):
        leases.release_all()
