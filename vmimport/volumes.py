"""The volumes of an attached guest disk: its partitions (or the whole disk when it has
no partition table) and, once activated, its LVM logical volumes, each with what it
holds (filesystem type, UUID, label) and the partition-table names fstab may use."""

from __future__ import annotations

import os
from dataclasses import dataclass

from vmimport import loop
from vmimport.errors import CorruptImage, ToolFailed
from vmimport.leases import Leases
from vmimport.lvm import LogicalVolume
from vmimport.magic import sniff_superblock
from vmimport.partitions import Partition, kernel_partitions, read_table
from vmimport.tools import find_tool, run


@dataclass(frozen=True)
class Volume:
    """Something that can hold a filesystem. ``number`` is the partition number (None for
    a whole-disk filesystem and for logical volumes); ``lv`` is "VG/LV" for LVM."""

    device: str
    size: int
    fstype: str | None
    uuid: str | None = None
    label: str | None = None
    number: int | None = None
    partuuid: str | None = None
    partlabel: str | None = None
    lv: LogicalVolume | None = None

    def describe(self) -> str:
        if self.lv is not None:
            return f"logical volume {self.lv.vg}/{self.lv.lv}"
        if self.number is not None:
            return f"partition {self.number}"
        return "the whole disk"

    def is_luks(self) -> bool:
        return self.fstype == "crypto_LUKS"

    def is_lvm(self) -> bool:
        return self.fstype == "LVM2_member"


def _device_size(device: str) -> int:
    fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def blkid(device: str) -> dict[str, str]:
    """``blkid -p -o export``: a low-level probe of the device itself (no cache)."""
    if find_tool("blkid") is None:
        return {}
    try:
        # 2: nothing recognised.
        out = run(["blkid", "-p", "-o", "export", device], ok=(0, 2))
    except ToolFailed:
        return {}
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def probe(
    device: str,
    partition: Partition | None = None,
    lv: LogicalVolume | None = None,
) -> Volume:
    """What *device* holds: superblock magic first (ext*, xfs, btrfs, swap, LUKS, LVM),
    blkid for the rest (vfat and the like)."""
    with open(device, "rb") as f:
        sb = sniff_superblock(f)
    fstype, fs_uuid, label = (sb.fstype, sb.uuid, sb.label) if sb else (None, None, None)
    if sb is None:
        found = blkid(device)
        fstype, fs_uuid, label = found.get("TYPE"), found.get("UUID"), found.get("LABEL")
    return Volume(
        device=device,
        size=partition.size if partition else _device_size(device),
        fstype=fstype,
        uuid=fs_uuid,
        label=label,
        number=partition.number if partition else None,
        partuuid=partition.partuuid if partition else None,
        partlabel=partition.partlabel if partition else None,
        lv=lv,
    )


def discover(disk: str, leases: Leases) -> list[Volume]:
    """The volumes on the attached *disk*. Partitions the kernel made (/dev/loopNpM) are
    used as they are; where it made none (a kernel without partition-table support), each
    partition gets its own read-only loop device over its byte range."""
    size = _device_size(disk)
    with open(disk, "rb") as f:
        table = read_table(f, size)
    if table is None or not table.partitions:
        return [probe(disk)]
    for part in table.partitions:
        if part.start + part.size > size:
            raise CorruptImage(
                f"partition {part.number} ends at {part.start + part.size} bytes but the disk "
                f"ends at {size}: the image is truncated",
                disk,
                hint="the copy of the image may be incomplete; copy it again",
            )
    made = {p.number: p for p in kernel_partitions(disk)}
    # Partition loops go straight onto the disk loop's own backing file where there is
    # one: a loop stacked on a loop reads through two page caches (3x slower copies here).
    bound = loop.binding(disk)
    base, shift = (bound[0], bound[1]) if bound and os.path.isfile(bound[0]) else (disk, 0)
    volumes = []
    for part in table.partitions:
        kernel = made.get(part.number)
        if kernel is not None and (kernel.start, kernel.size) == (part.start, part.size):
            device = kernel.device
        else:
            device = leases.attach_loop(base, offset=shift + part.start, size=part.size)
        volumes.append(probe(device, part))
    return volumes
