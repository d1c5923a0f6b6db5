"""Small guest disk images built from scratch for the vmimport tests: a busybox root, GPT
partitions made with sfdisk and filesystems written straight into the image with
``mkfs.ext4 -E offset=... -d TREE`` (no loop device or mount needed to build them)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1 << 20
BUSYBOX = Path("/bin/busybox")
OS_RELEASE = 'PRETTY_NAME="vmimport test guest"\nID=debian\nVERSION_ID="12"\n'


def sh(*argv: str | os.PathLike[str], stdin: str | None = None) -> str:
    return subprocess.run(
        [str(a) for a in argv], input=stdin, capture_output=True, text=True, check=True
    ).stdout


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Part:
    """One partition: its size, what goes in it, and its ids (made up front, so the
    guest's fstab can name them before the filesystems exist)."""

    size_mib: int
    kind: str = "ext4"  # "ext4", "luks", "lvm" or "raw"
    files: dict[str, str] = field(default_factory=dict)
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    partuuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    label: str = ""


def busybox_root(fstab: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The files of a tiny installed system: busybox, /sbin/init, os-release, fstab."""
    files = {"etc/fstab": fstab, "etc/os-release": OS_RELEASE, "etc/hostname": "guest\n"}
    files.update(extra or {})
    return files


def _fill(tree: Path, files: dict[str, str], with_busybox: bool) -> None:
    for name in ("boot", "var", "home", "proc", "sys", "dev", "tmp"):
        (tree / name).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text)
    if with_busybox:
        (tree / "bin").mkdir(exist_ok=True)
        shutil.copy2(BUSYBOX, tree / "bin/busybox")
        (tree / "bin/sh").symlink_to("busybox")
        (tree / "sbin").mkdir(exist_ok=True)
        (tree / "sbin/init").symlink_to("/bin/busybox")  # absolute, as distributions do


def build_disk(path: Path, parts: list[Part], work: Path) -> Path:
    """A GPT disk image at *path* holding *parts* in order, numbered from 1."""
    total = 1 + sum(p.size_mib for p in parts) + 1
    path.unlink(missing_ok=True)
    sh("truncate", "-s", f"{total}M", path)
    script = "label: gpt\n" + "".join(
        f"size={p.size_mib}MiB, type=linux, uuid={p.partuuid}\n" for p in parts
    )
    sh("sfdisk", "-q", path, stdin=script)
    start = MIB
    for number, part in enumerate(parts, start=1):
        if part.kind == "ext4":
            tree = work / f"{path.stem}-p{number}"
            shutil.rmtree(tree, ignore_errors=True)
            tree.mkdir(parents=True)
            _fill(tree, part.files, with_busybox="etc/fstab" in part.files)
            argv = ["mkfs.ext4", "-q", "-F", "-U", part.uuid, "-E", f"offset={start}"]
            if part.label:
                argv += ["-L", part.label]
            sh(*argv, "-d", tree, path, f"{part.size_mib}M")
        elif part.kind == "luks":
            # Header only: cryptsetup formats a file directly, no device-mapper needed.
            img = work / f"{path.stem}-p{number}.luks"
            sh("truncate", "-s", f"{part.size_mib}M", img)
            sh(
                "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2",
                "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", img,
                stdin="secret\n",
            )  # fmt: skip
            _write_at(path, start, img)
        start += part.size_mib * MIB
    return path


def _write_at(disk: Path, offset: int, content: Path) -> None:
    sh("dd", f"if={content}", f"of={disk}", "bs=1M", f"seek={offset}", "oflag=seek_bytes",
       "conv=notrunc,sparse", "status=none")  # fmt: skip


def convert(raw: Path, fmt: str, *extra: str) -> Path:
    out = raw.with_suffix(f".{fmt}" if not extra else f".c.{fmt}")
    sh("qemu-img", "convert", "-f", "raw", "-O", fmt, *extra, raw, out)
    return out


def lvm_partition(disk: Path, offset: int, size_mib: int, vg: str, work: Path) -> None:
    """Make the partition at *offset* an LVM PV holding *vg* with one LV "root". Without
    device-mapper LVs cannot be created, but metadata can be restored: vgcfgrestore
    writes a VG description that names the LV."""
    part = work / f"{vg}.pv"
    sh("truncate", "-s", f"{size_mib}M", part)
    device = sh("losetup", "--show", "-f", part).strip()
    accept = f'["a|^{device}$|","r|.*|"]'
    config = (
        f"devices {{ filter={accept} global_filter={accept} use_devicesfile=0 "
        "obtain_device_list_from_udev=0 } backup { backup=0 archive=0 } "
        "activation { udev_sync=0 udev_rules=0 monitoring=0 }"
    )
    try:
        sh("pvcreate", "--config", config, device)
        sh("vgcreate", "--config", config, "-s", "4M", vg, device)
        backup = work / f"{vg}.vg"
        sh("vgcfgbackup", "--config", config, "-f", backup, vg)
        text = backup.read_text()
        at = text.rindex("}")
        lv = (
            '\tlogical_volumes {\n\t\troot {\n\t\t\tid = "aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg"\n'
            '\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]\n\t\t\tflags = []\n'
            "\t\t\tsegment_count = 1\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n"
            '\t\t\t\textent_count = 2\n\t\t\t\ttype = "striped"\n\t\t\t\tstripe_count = 1\n'
            '\t\t\t\tstripes = [\n\t\t\t\t\t"pv0", 0\n\t\t\t\t]\n\t\t\t}\n\t\t}\n\t}\n'
        )
        backup.write_text(text[:at] + lv + text[at:])
        sh("vgcfgrestore", "--config", config, "-f", backup, vg)
    finally:
        sh("losetup", "-d", device)
    _write_at(disk, offset, part)


def build_lvm_disk(path: Path, vg: str, work: Path) -> tuple[Part, Path]:
    """A GPT disk: /boot on partition 1, an LVM PV on partition 2 whose VG *vg* holds the
    root ("root", named /dev/mapper/VG-root in fstab) and /var ("var", named /dev/VG/var).
    Needs device-mapper (the VM test): the LVs are made and filled for real."""
    boot = Part(16, files={"vmlinuz-test": "kernel\n"})
    build_disk(path, [boot, Part(48, kind="raw")], work)
    mapper = vg.replace("-", "--")
    root_files = busybox_root(
        f"/dev/mapper/{mapper}-root / ext4 defaults 0 1\n"
        f"UUID={boot.uuid} /boot ext4 defaults 0 2\n"
        f"/dev/{vg}/var /var ext4 defaults 0 2\n"
    )
    device = sh("losetup", "--show", "-f", "--offset", str(17 * MIB), "--sizelimit",
                str(48 * MIB), path).strip()  # fmt: skip
    accept = f'["a|^{device}$|","r|.*|"]'
    config = (
        f"devices {{ filter={accept} global_filter={accept} use_devicesfile=0 "
        "obtain_device_list_from_udev=0 } backup { backup=0 archive=0 } "
        "activation { udev_sync=0 udev_rules=0 verify_udev_operations=1 monitoring=0 }"
    )
    try:
        sh("pvcreate", "--config", config, device)
        sh("vgcreate", "--config", config, "-s", "4M", vg, device)
        sh("lvcreate", "--config", config, "-y", "-L", "24M", "-n", "root", vg)
        sh("lvcreate", "--config", config, "-y", "-L", "12M", "-n", "var", vg)
        for name, files, busybox in (
            ("root", root_files, True),
            ("var", {"lib/marker": "lvm var\n"}, False),
        ):
            tree = work / f"{vg}-{name}"
            tree.mkdir(parents=True, exist_ok=True)
            _fill(tree, files, with_busybox=busybox)
            sh("mkfs.ext4", "-q", "-F", "-d", tree, f"/dev/mapper/{mapper}-{name}")
    finally:
        subprocess.run(["vgchange", "--config", config, "-an", vg], capture_output=True)
        sh("losetup", "-d", device)
    return boot, path
