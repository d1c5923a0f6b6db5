"""The partitions of a disk: read from the partition table itself (GPT or MBR with logical
partitions) and, where the kernel parsed the table too, from /sys/block/DISK/DISKpN.

The table is always read in user space: it carries the PARTUUIDs and PARTLABELs a guest's
fstab may name, and some kernels (this project's CI kernel among them) are built without
partition-table support, so ``losetup -P`` makes no partition devices at all. The caller
then binds a loop device to each partition's byte range instead.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SECTOR = 512  # disk images with 4 KiB logical sectors are checked for as well, see below

# UEFI spec 5.3.2, GPT header at LBA 1.
GPT_SIGNATURE = b"EFI PART"
GPT_HEADER_FORMAT = "<8sIIIIQQQQ16sQIII"  # up to SizeOfPartitionEntry and its CRC
GPT_MAX_ENTRIES = 1024  # far above anything real; bounds a corrupt header's loop

# MBR: four 16-byte entries from byte 446; logical partitions chain through EBRs.
MBR_TABLE_OFFSET = 446
MBR_DISK_SIGNATURE_OFFSET = 440
MBR_GPT_PROTECTIVE = 0xEE
MBR_EXTENDED = (0x05, 0x0F, 0x85)
MBR_MAX_LOGICAL = 128


@dataclass(frozen=True)
class Partition:
    """One partition-table entry. ``start`` and ``size`` are in bytes; ``partuuid`` is
    lower case the way /dev/disk/by-partuuid and blkid spell it."""

    number: int
    start: int
    size: int
    partuuid: str | None = None
    partlabel: str | None = None
    type_id: str | None = None  # GPT type GUID or MBR type as two hex digits


@dataclass(frozen=True)
class PartitionTable:
    scheme: str  # "gpt" or "dos"
    sector_size: int
    partitions: tuple[Partition, ...]


def read_table(f: BinaryIO, disk_size: int) -> PartitionTable | None:
    """The partition table of the disk *f*, or None when it has none (a whole-disk
    filesystem, a bare LVM PV or LUKS, or nothing known)."""
    f.seek(0)
    mbr = f.read(SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        return None
    entries = [struct.unpack_from("<B3sB3sII", mbr, MBR_TABLE_OFFSET + 16 * i) for i in range(4)]
    if any(e[2] == MBR_GPT_PROTECTIVE for e in entries):
        for sector_size in (512, 4096):
            table = _read_gpt(f, sector_size, disk_size)
            if table is not None:
                return table
        return None
    if all(e[2] == 0 for e in entries) or any(e[0] not in (0, 0x80) for e in entries):
        return None  # a FAT boot sector or garbage, not an MBR
    return _read_mbr(f, mbr, disk_size)


def _read_gpt(f: BinaryIO, sector_size: int, disk_size: int) -> PartitionTable | None:
    f.seek(sector_size)
    header = f.read(92)
    if len(header) < 92 or not header.startswith(GPT_SIGNATURE):
        return None
    fields = struct.unpack_from(GPT_HEADER_FORMAT, header)
    entries_lba, count, entry_size = fields[10], fields[11], fields[12]
    if entry_size < 128 or count > GPT_MAX_ENTRIES:
        return None
    f.seek(entries_lba * sector_size)
    raw = f.read(count * entry_size)
    partitions = []
    for index in range(len(raw) // entry_size):
        entry = raw[index * entry_size : (index + 1) * entry_size]
        type_guid, unique_guid, first, last = struct.unpack_from("<16s16sQQ", entry)
        if not any(type_guid):
            continue  # an unused slot; numbering still counts it
        start, size = first * sector_size, (last - first + 1) * sector_size
        if last < first:
            continue  # nonsense; a partition past the end is kept (the caller says so)
        name = entry[56:128].decode("utf-16-le", errors="replace").split("\x00", 1)[0]
        partitions.append(
            Partition(
                number=index + 1,
                start=start,
                size=size,
                partuuid=str(uuid.UUID(bytes_le=unique_guid)),
                partlabel=name or None,
                type_id=str(uuid.UUID(bytes_le=type_guid)),
            )
        )
    return PartitionTable("gpt", sector_size, tuple(partitions))


def _read_mbr(f: BinaryIO, mbr: bytes, disk_size: int) -> PartitionTable:
    # The PARTUUID of an MBR partition is the disk signature and the partition number,
    # "1234abcd-02", as util-linux and the kernel's root=PARTUUID= spell it.
    (signature,) = struct.unpack_from("<I", mbr, MBR_DISK_SIGNATURE_OFFSET)
    partitions: list[Partition] = []

    def add(number: int, kind: int, start_lba: int, sectors: int) -> None:
        start, size = start_lba * SECTOR, sectors * SECTOR
        if sectors:
            partitions.append(
                Partition(number, start, size, f"{signature:08x}-{number:02x}", None, f"{kind:02x}")
            )

    extended: tuple[int, int] | None = None
    for i in range(4):
        _, _, kind, _, start_lba, sectors = struct.unpack_from(
            "<B3sB3sII", mbr, MBR_TABLE_OFFSET + 16 * i
        )
        if kind == 0:
            continue
        if kind in MBR_EXTENDED:
            extended = (start_lba, sectors)
        else:
            add(i + 1, kind, start_lba, sectors)
    if extended is not None:
        # Each EBR holds one logical partition (relative to the EBR) and a link to the next
        # EBR (relative to the extended partition's start). Numbering starts at 5.
        base, ebr, number = extended[0], extended[0], 5
        seen: set[int] = set()
        while ebr not in seen and len(seen) < MBR_MAX_LOGICAL:
            seen.add(ebr)
            f.seek(ebr * SECTOR)
            sector = f.read(SECTOR)
            if len(sector) < SECTOR or sector[510:512] != b"\x55\xaa":
                break
            _, _, kind, _, rel, sectors = struct.unpack_from("<B3sB3sII", sector, MBR_TABLE_OFFSET)
            _, _, link_kind, _, link, _ = struct.unpack_from(
                "<B3sB3sII", sector, MBR_TABLE_OFFSET + 16
            )
            if kind:
                add(number, kind, ebr + rel, sectors)
                number += 1
            if not link_kind:
                break
            ebr = base + link
    return PartitionTable("dos", SECTOR, tuple(partitions))


@dataclass(frozen=True)
class KernelPartition:
    """A partition device the kernel made: /dev/DISKpN, its number, start and size in bytes."""

    device: str
    number: int
    start: int
    size: int


def kernel_partitions(disk: str, sys_block: str | Path = "/sys/block") -> list[KernelPartition]:
    """The partitions the kernel found on *disk* (``/dev/loop3`` or ``loop3``), from
    /sys/block/loop3/loop3pN/{partition,start,size}. Sizes in sysfs are always in
    512-byte units, whatever the device's sector size. Empty when the kernel parsed none."""
    name = Path(disk).name
    found = []
    for entry in sorted(Path(sys_block, name).glob(f"{name}*")):
        try:
            number = int((entry / "partition").read_text())
            start = int((entry / "start").read_text()) * 512
            size = int((entry / "size").read_text()) * 512
        except (OSError, ValueError):
            continue  # not a partition directory, or removed while we looked
        found.append(KernelPartition(f"/dev/{entry.name}", number, start, size))
    return sorted(found, key=lambda p: p.number)
