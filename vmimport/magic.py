"""Recognising what a file or a block device holds from its first bytes: disk-image
containers (qcow2, vmdk, vdi, vhdx, vhd) and the superblocks of the filesystems and
volume formats a guest's partitions hold. Pure functions over a readable binary file."""

from __future__ import annotations

import enum
import struct
import uuid
from dataclasses import dataclass
from typing import BinaryIO


class ImageFormat(enum.StrEnum):
    """Disk-image formats, named as ``qemu-img -f`` names them."""

    RAW = "raw"
    QCOW2 = "qcow2"
    VMDK = "vmdk"
    VDI = "vdi"
    VHDX = "vhdx"
    VPC = "vpc"  # Microsoft VHD (the older, non-x one)

    def needs_qemu(self) -> bool:
        """Whether the kernel cannot read it directly: it must be converted or served."""
        return self is not ImageFormat.RAW

    def has_check(self) -> bool:
        """Whether ``qemu-img check`` can verify its metadata."""
        return self in (ImageFormat.QCOW2, ImageFormat.VDI, ImageFormat.VHDX, ImageFormat.VMDK)


# qemu block/qcow2.h: QCOW_MAGIC "QFI\xfb", then a big-endian version (2 or 3).
QCOW_MAGIC = b"QFI\xfb"
# qemu block/vmdk.c: VMDK4_MAGIC "KDMV" (hosted sparse extent), VMDK3_MAGIC "COWD" (ESX),
# and the text descriptor of monolithicFlat / split images.
VMDK4_MAGIC = b"KDMV"
VMDK3_MAGIC = b"COWD"
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"
# qemu block/vdi.c: VDI_SIGNATURE, little-endian at offset 64 of the pre-header.
VDI_SIGNATURE = 0xBEDA107F
VDI_SIGNATURE_OFFSET = 64
# qemu block/vhdx.h: the file type identifier at offset 0.
VHDX_MAGIC = b"vhdxfile"
# qemu block/vpc.c: the "conectix" cookie of the footer (at the end of a fixed VHD, and a
# copy at offset 0 of a dynamic one).
VHD_COOKIE = b"conectix"
# MBR and GPT protective MBR: the boot signature in bytes 510-511.
MBR_SIGNATURE = b"\x55\xaa"

# Containers that are not disk images, named for the hint.
_ARCHIVES = (
    (0, b"\x1f\x8b", "gzip", "gunzip it first"),
    (0, b"\xfd7zXZ\x00", "xz", "unxz it first"),
    (0, b"\x28\xb5\x2f\xfd", "zstd", "unzstd it first"),
    (0, b"BZh", "bzip2", "bunzip2 it first"),
    (257, b"ustar", "tar (an OVA?)", "extract the disk image from it first (tar xf FILE.ova)"),
)


def sniff_image(head: bytes, tail: bytes) -> ImageFormat | None:
    """The container format from the first 64 KiB (*head*) and the last 512 bytes (*tail*)
    of a file, or None when no container magic is there (the caller then looks for a
    partition table or a filesystem: a raw image)."""
    if head.startswith(QCOW_MAGIC):
        (version,) = struct.unpack_from(">I", head, 4)
        return ImageFormat.QCOW2 if version in (2, 3) else None
    if head.startswith((VMDK4_MAGIC, VMDK3_MAGIC, VMDK_DESCRIPTOR)):
        return ImageFormat.VMDK
    if head.startswith(VHDX_MAGIC):
        return ImageFormat.VHDX
    if len(head) >= VDI_SIGNATURE_OFFSET + 4:
        (signature,) = struct.unpack_from("<I", head, VDI_SIGNATURE_OFFSET)
        if signature == VDI_SIGNATURE:
            return ImageFormat.VDI
    if head.startswith(VHD_COOKIE) or tail.startswith(VHD_COOKIE):
        return ImageFormat.VPC
    return None


def sniff_archive(head: bytes) -> tuple[str, str] | None:
    """(kind, hint) when *head* starts a compressed file or an archive, not a disk."""
    for offset, magic, kind, hint in _ARCHIVES:
        if head[offset : offset + len(magic)] == magic:
            return kind, hint
    return None


def has_partition_table(head: bytes) -> bool:
    """An MBR (or the protective MBR in front of a GPT) ends its first sector with 55 aa."""
    return len(head) >= 512 and head[510:512] == MBR_SIGNATURE


@dataclass(frozen=True)
class Superblock:
    """What a partition holds, in blkid's TYPE names: ext2/ext3/ext4, xfs, btrfs, swap,
    crypto_LUKS, LVM2_member."""

    fstype: str
    uuid: str | None = None
    label: str | None = None

    def is_luks(self) -> bool:
        return self.fstype == "crypto_LUKS"

    def is_lvm(self) -> bool:
        return self.fstype == "LVM2_member"


# fs/ext4/ext4.h: struct ext4_super_block starts 1024 bytes in.
EXT_SUPER_OFFSET = 1024
EXT_MAGIC_OFFSET = 0x38
EXT_SUPER_MAGIC = 0xEF53
EXT_COMPAT_OFFSET = 0x5C
EXT_INCOMPAT_OFFSET = 0x60
EXT_RO_COMPAT_OFFSET = 0x64
EXT_UUID_OFFSET = 0x68
EXT_LABEL_OFFSET = 0x78
EXT3_FEATURE_COMPAT_HAS_JOURNAL = 0x0004
EXT3_FEATURE_INCOMPAT_JOURNAL_DEV = 0x0008
# Features ext3 never had: any of them makes it ext4 (the way blkid tells them apart).
EXT4_INCOMPAT_ONLY = 0x0040 | 0x0080 | 0x0200  # EXTENTS, 64BIT, FLEX_BG
EXT4_RO_COMPAT_ONLY = 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0400  # HUGE_FILE, GDT_CSUM,
# DIR_NLINK, EXTRA_ISIZE, METADATA_CSUM

# fs/xfs/libxfs/xfs_format.h: struct xfs_sb, big-endian, at offset 0.
XFS_SB_MAGIC = b"XFSB"
XFS_UUID_OFFSET = 32  # sb_uuid, after magicnum, blocksize, dblocks, rblocks, rextents
XFS_LABEL_OFFSET = 108  # sb_fname[12]

# fs/btrfs (include/uapi/linux/btrfs_tree.h): the primary superblock at 64 KiB.
BTRFS_SUPER_OFFSET = 65536
BTRFS_MAGIC = b"_BHRfS_M"
BTRFS_MAGIC_OFFSET = 64
BTRFS_FSID_OFFSET = 32
BTRFS_LABEL_OFFSET = 0x12B  # label[256], after the dev_item

# include/linux/swap.h: union swap_header, magic in the last 10 bytes of the first page.
SWAP_MAGICS = (b"SWAPSPACE2", b"SWAP-SPACE")
SWAP_PAGE_SIZES = (4096, 8192, 16384, 65536)
SWAP_UUID_OFFSET = 1036  # info.sws_uuid, after bootbits[1024], version, last_page, nr_badpages

# cryptsetup's lib/luks1/luks.h and lib/luks2/luks2.h: the same magic and UUID place.
LUKS_MAGIC = b"LUKS\xba\xbe"
LUKS_UUID_OFFSET = 168

# lvm2 lib/label/label.h: a label in one of the first four 512-byte sectors.
LVM_LABEL_ID = b"LABEL_ONE"
LVM_LABEL_TYPE = b"LVM2 001"
LVM_LABEL_TYPE_OFFSET = 24
LVM_LABEL_SCAN_SECTORS = 4


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _text(raw: bytes) -> str | None:
    value = raw.split(b"\x00", 1)[0].decode(errors="replace").strip()
    return value or None


def _uuid(raw: bytes) -> str | None:
    return None if not any(raw) else str(uuid.UUID(bytes=raw))


def _lvm_uuid(raw: bytes) -> str:
    # LVM writes its 32-character ids without dashes and shows them 6-4-4-4-4-4-6.
    text = raw.decode(errors="replace")
    cuts = (6, 4, 4, 4, 4, 4, 6)
    parts, at = [], 0
    for n in cuts:
        parts.append(text[at : at + n])
        at += n
    return "-".join(parts)


def sniff_superblock(f: BinaryIO) -> Superblock | None:
    """The filesystem or volume format at the start of *f* (a partition or a whole-disk
    filesystem image), or None when none of the known ones is there."""
    head = _read(f, 0, 4096)
    if head.startswith(LUKS_MAGIC):
        return Superblock("crypto_LUKS", _text(head[LUKS_UUID_OFFSET : LUKS_UUID_OFFSET + 40]))
    if head.startswith(XFS_SB_MAGIC):
        return Superblock(
            "xfs",
            _uuid(head[XFS_UUID_OFFSET : XFS_UUID_OFFSET + 16]),
            _text(head[XFS_LABEL_OFFSET : XFS_LABEL_OFFSET + 12]),
        )
    for sector in range(LVM_LABEL_SCAN_SECTORS):
        label = head[sector * 512 : sector * 512 + 512]
        if label.startswith(LVM_LABEL_ID) and label[24:32] == LVM_LABEL_TYPE:
            (pv_offset,) = struct.unpack_from("<I", label, 20)
            return Superblock("LVM2_member", _lvm_uuid(label[pv_offset : pv_offset + 32]))
    ext = _read(f, EXT_SUPER_OFFSET, 1024)
    if len(ext) == 1024 and struct.unpack_from("<H", ext, EXT_MAGIC_OFFSET)[0] == EXT_SUPER_MAGIC:
        return Superblock(
            _ext_flavour(ext),
            _uuid(ext[EXT_UUID_OFFSET : EXT_UUID_OFFSET + 16]),
            _text(ext[EXT_LABEL_OFFSET : EXT_LABEL_OFFSET + 16]),
        )
    btrfs = _read(f, BTRFS_SUPER_OFFSET, 4096)
    if btrfs[BTRFS_MAGIC_OFFSET : BTRFS_MAGIC_OFFSET + 8] == BTRFS_MAGIC:
        return Superblock(
            "btrfs",
            _uuid(btrfs[BTRFS_FSID_OFFSET : BTRFS_FSID_OFFSET + 16]),
            _text(btrfs[BTRFS_LABEL_OFFSET : BTRFS_LABEL_OFFSET + 256]),
        )
    for page in SWAP_PAGE_SIZES:
        if _read(f, page - 10, 10) in SWAP_MAGICS:
            return Superblock("swap", _uuid(_read(f, SWAP_UUID_OFFSET, 16)))
    return None


def _ext_flavour(sb: bytes) -> str:
    compat, incompat, ro_compat = struct.unpack_from("<III", sb, EXT_COMPAT_OFFSET)
    if incompat & EXT3_FEATURE_INCOMPAT_JOURNAL_DEV:
        return "jbd"  # an external journal, not a filesystem
    if incompat & EXT4_INCOMPAT_ONLY or ro_compat & EXT4_RO_COMPAT_ONLY:
        return "ext4"
    if compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL:
        return "ext3"
    return "ext2"
