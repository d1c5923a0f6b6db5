"""Partition tables read in user space (GPT, MBR with logical partitions), checked
against sfdisk's own reading, and the partitions the kernel made, from a fake /sys."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from vmimport.partitions import kernel_partitions, read_table

MIB = 1 << 20

needs_sfdisk = pytest.mark.skipif(shutil.which("sfdisk") is None, reason="sfdisk (fdisk) missing")


def make_disk(tmp_path: Path, script: str, size_mib: int = 64) -> Path:
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(size_mib * MIB)
    subprocess.run(["sfdisk", "-q", disk], input=script, text=True, check=True)
    return disk


def sfdisk_view(disk: Path) -> dict[str, object]:
    out = subprocess.run(["sfdisk", "--json", disk], capture_output=True, text=True, check=True)
    table: dict[str, object] = json.loads(out.stdout)["partitiontable"]
    return table


@needs_sfdisk
def test_gpt_matches_sfdisk(tmp_path: Path) -> None:
    disk = make_disk(
        tmp_path,
        "label: gpt\n"
        "size=8MiB, type=uefi, name=EFI\n"
        "size=16MiB, type=linux, name=root, uuid=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
        "size=4MiB, type=swap\n",
    )
    with open(disk, "rb") as f:
        table = read_table(f, disk.stat().st_size)
    assert table is not None and table.scheme == "gpt"
    theirs = sfdisk_view(disk)["partitions"]
    assert isinstance(theirs, list)
    assert [(p.number, p.start, p.size, p.partuuid, p.partlabel) for p in table.partitions] == [
        (i + 1, t["start"] * 512, t["size"] * 512, t["uuid"].lower(), t.get("name"))
        for i, t in enumerate(theirs)
    ]
    assert table.partitions[1].partuuid == "0fc63daf-8483-4772-8e79-3d69d8477de4"
    assert table.partitions[0].type_id == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"  # ESP


@needs_sfdisk
def test_mbr_with_logical_partitions(tmp_path: Path) -> None:
    disk = make_disk(
        tmp_path,
        "label: dos\nlabel-id: 0x1234abcd\n"
        "size=8MiB, type=83\nsize=40MiB, type=5\n"
        # Logical partitions: starts inside the extended one (sectors 18432 to 100351).
        "start=20480, size=8MiB, type=83\nstart=38912, size=8MiB, type=82\n",
    )
    with open(disk, "rb") as f:
        table = read_table(f, disk.stat().st_size)
    assert table is not None and table.scheme == "dos"
    listed = sfdisk_view(disk)["partitions"]
    assert isinstance(listed, list)
    theirs = {int(t["node"].rsplit("img", 1)[1]): t for t in listed}
    ours = {p.number: p for p in table.partitions}
    assert sorted(ours) == [1, 5, 6]  # the extended container itself is not a volume
    for number, part in ours.items():
        assert (part.start, part.size) == (
            theirs[number]["start"] * 512,
            theirs[number]["size"] * 512,
        )
    assert ours[5].partuuid == "1234abcd-05"
    assert ours[6].type_id == "82"


def test_no_table(tmp_path: Path) -> None:
    blank = tmp_path / "blank"
    blank.write_bytes(bytes(8192))
    with open(blank, "rb") as f:
        assert read_table(f, 8192) is None


def test_protective_mbr_without_a_gpt_header_is_no_table(tmp_path: Path) -> None:
    mbr = bytearray(8192)
    mbr[446 + 4] = 0xEE
    mbr[510:512] = b"\x55\xaa"
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(mbr))
    with open(disk, "rb") as f:
        assert read_table(f, 8192) is None


def test_kernel_partitions_from_sysfs(tmp_path: Path) -> None:
    loop = tmp_path / "loop7"
    for name, number, start, size in (("loop7p2", 2, 34816, 81920), ("loop7p1", 1, 2048, 32768)):
        part = loop / name
        part.mkdir(parents=True)
        (part / "partition").write_text(f"{number}\n")
        (part / "start").write_text(f"{start}\n")
        (part / "size").write_text(f"{size}\n")
    (loop / "loop").mkdir()  # other entries are not partitions
    (loop / "queue").mkdir()
    found = kernel_partitions("/dev/loop7", sys_block=tmp_path)
    assert [(p.device, p.number, p.start, p.size) for p in found] == [
        ("/dev/loop7p1", 1, 2048 * 512, 32768 * 512),
        ("/dev/loop7p2", 2, 34816 * 512, 81920 * 512),
    ]
    assert kernel_partitions("loop8", sys_block=tmp_path) == []


def test_free_nbd_device_from_sysfs(tmp_path: Path) -> None:
    from vmimport import nbd

    for name, size, served in (("nbd0", 20480, True), ("nbd1", 0, True), ("nbd10", 0, False)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "size").write_text(f"{size}\n")
        if served:
            (tmp_path / name / "pid").write_text("4242\n")
    (tmp_path / "nbd2").mkdir()
    (tmp_path / "nbd2" / "size").write_text("0\n")
    assert nbd.free_device(tmp_path) == "/dev/nbd2"  # numeric order: nbd2 before nbd10
    (tmp_path / "nbd2" / "pid").write_text("1\n")
    assert nbd.free_device(tmp_path) == "/dev/nbd10"
