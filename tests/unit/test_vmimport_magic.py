"""Recognising image formats and partition contents by their magic bytes."""

from __future__ import annotations

import io
import struct
import uuid
from pathlib import Path

import pytest

from vmimport import ImageFormat, UnknownFormat, detect_format
from vmimport.magic import sniff_archive, sniff_image, sniff_superblock

UUID = uuid.UUID("6f1d0c2a-3b4e-4f5a-8b6c-7d8e9f0a1b2c")


def image_head(magic: bytes, at: int = 0, size: int = 4096) -> bytes:
    head = bytearray(size)
    head[at : at + len(magic)] = magic
    return bytes(head)


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (image_head(b"QFI\xfb\x00\x00\x00\x03"), ImageFormat.QCOW2),
        (image_head(b"QFI\xfb\x00\x00\x00\x02"), ImageFormat.QCOW2),
        (image_head(b"KDMV\x01\x00\x00\x00"), ImageFormat.VMDK),
        (image_head(b"COWD"), ImageFormat.VMDK),
        (image_head(b"# Disk DescriptorFile\nversion=1\n"), ImageFormat.VMDK),
        (image_head(struct.pack("<I", 0xBEDA107F), at=64), ImageFormat.VDI),
        (image_head(b"vhdxfile"), ImageFormat.VHDX),
        (image_head(b"conectix"), ImageFormat.VPC),
    ],
)
def test_container_formats_by_magic(head: bytes, fmt: ImageFormat) -> None:
    assert sniff_image(head, b"") is fmt


def test_fixed_vhd_is_known_by_its_footer() -> None:
    assert sniff_image(bytes(4096), image_head(b"conectix", size=512)) is ImageFormat.VPC


def test_qcow_version_1_is_not_qcow2() -> None:
    assert sniff_image(image_head(b"QFI\xfb\x00\x00\x00\x01"), b"") is None


def test_no_magic_is_none() -> None:
    assert sniff_image(bytes(4096), bytes(512)) is None


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\xfd7zXZ\x00\x00", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (image_head(b"ustar", at=257), "tar (an OVA?)"),
    ],
)
def test_archives_are_named(head: bytes, kind: str) -> None:
    found = sniff_archive(head)
    assert found is not None and found[0] == kind


def ext_superblock(compat: int = 0, incompat: int = 0, ro_compat: int = 0) -> io.BytesIO:
    disk = bytearray(8192)
    sb = 1024
    struct.pack_into("<H", disk, sb + 0x38, 0xEF53)
    struct.pack_into("<III", disk, sb + 0x5C, compat, incompat, ro_compat)
    disk[sb + 0x68 : sb + 0x78] = UUID.bytes
    disk[sb + 0x78 : sb + 0x7D] = b"rootf"
    return io.BytesIO(bytes(disk))


@pytest.mark.parametrize(
    ("features", "fstype"),
    [
        ({}, "ext2"),
        ({"compat": 0x4}, "ext3"),
        ({"compat": 0x4, "incompat": 0x40}, "ext4"),
        ({"compat": 0x4, "ro_compat": 0x400}, "ext4"),
        ({"incompat": 0x8}, "jbd"),
    ],
)
def test_ext_flavours(features: dict[str, int], fstype: str) -> None:
    sb = sniff_superblock(ext_superblock(**features))
    assert sb is not None
    assert (sb.fstype, sb.uuid, sb.label) == (fstype, str(UUID), "rootf")


def test_xfs() -> None:
    disk = bytearray(8192)
    disk[0:4] = b"XFSB"
    disk[32:48] = UUID.bytes
    disk[108:112] = b"data"
    sb = sniff_superblock(io.BytesIO(bytes(disk)))
    assert sb is not None and (sb.fstype, sb.uuid, sb.label) == ("xfs", str(UUID), "data")


def test_btrfs() -> None:
    disk = bytearray(65536 + 4096)
    disk[65536 + 32 : 65536 + 48] = UUID.bytes
    disk[65536 + 64 : 65536 + 72] = b"_BHRfS_M"
    disk[65536 + 0x12B : 65536 + 0x12B + 4] = b"home"
    sb = sniff_superblock(io.BytesIO(bytes(disk)))
    assert sb is not None and (sb.fstype, sb.uuid, sb.label) == ("btrfs", str(UUID), "home")


def test_swap() -> None:
    disk = bytearray(8192)
    disk[4086:4096] = b"SWAPSPACE2"
    disk[1036:1052] = UUID.bytes
    sb = sniff_superblock(io.BytesIO(bytes(disk)))
    assert sb is not None and (sb.fstype, sb.uuid) == ("swap", str(UUID))


def test_luks() -> None:
    disk = bytearray(8192)
    disk[0:8] = b"LUKS\xba\xbe\x00\x02"
    disk[168 : 168 + 36] = str(UUID).encode()
    sb = sniff_superblock(io.BytesIO(bytes(disk)))
    assert sb is not None and sb.is_luks() and sb.uuid == str(UUID)


@pytest.mark.parametrize("sector", [0, 1, 3])
def test_lvm_label_in_any_of_the_first_four_sectors(sector: int) -> None:
    disk = bytearray(8192)
    at = sector * 512
    disk[at : at + 9] = b"LABEL_ONE"
    struct.pack_into("<I", disk, at + 20, 32)
    disk[at + 24 : at + 32] = b"LVM2 001"
    disk[at + 32 : at + 64] = b"r1SFbq5HdlIYJjIF60H3eZZGj0dpDLv1"
    sb = sniff_superblock(io.BytesIO(bytes(disk)))
    assert sb is not None and sb.is_lvm()
    assert sb.uuid == "r1SFbq-5Hdl-IYJj-IF60-H3eZ-ZGj0-dpDLv1"  # as pvs shows it


def test_nothing_known() -> None:
    assert sniff_superblock(io.BytesIO(bytes(70000))) is None


def test_detect_format_raw_needs_a_table_or_a_filesystem(tmp_path: Path) -> None:
    mbr = tmp_path / "disk.img"
    mbr.write_bytes(bytes(510) + b"\x55\xaa" + bytes(4096))
    assert detect_format(mbr) is ImageFormat.RAW
    fs = tmp_path / "fs.img"
    fs.write_bytes(ext_superblock(compat=4, incompat=0x40).getvalue())
    assert detect_format(fs) is ImageFormat.RAW
    noise = tmp_path / "noise.img"
    noise.write_bytes(b"hello world\n" * 1000)
    with pytest.raises(UnknownFormat, match="not a disk image"):
        detect_format(noise)
    tiny = tmp_path / "tiny.img"
    tiny.write_bytes(b"x" * 10)
    with pytest.raises(UnknownFormat, match="too small"):
        detect_format(tiny)
