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
    kind: str = "ext4"  # "ext4", "minix", "luks" or "raw" (left as it is)
    files: dict[str, str] = field(default_factory=dict)
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    partuuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    label: str = ""
    dirty: bool = False  # ext4 marked as needing journal recovery (a guest that crashed)


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
            if part.dirty:
                sh("debugfs", "-w", "-R", "feature needs_recovery", f"{path}?offset={start}")
        elif part.kind == "minix":
            # A filesystem this project's CI kernel cannot mount, standing in for vfat
            # (which it lacks too, and which no installed tool here can make).
            img = work / f"{path.stem}-p{number}.minix"
            sh("truncate", "-s", f"{part.size_mib}M", img)
            sh("mkfs.minix", "-3", img)
            _write_at(path, start, img)
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


def needs_recovery(disk: Path, offset: int) -> bool:
    """Whether the ext4 at *offset* has EXT3_FEATURE_INCOMPAT_RECOVER (0x4) set."""
    with open(disk, "rb") as f:
        f.seek(offset + 1024 + 0x60)
        return bool(int.from_bytes(f.read(4), "little") & 0x4)


def convert(raw: Path, fmt: str, subformat: str = "") -> Path:
    """*raw* converted to *fmt* (``vmdk`` with a *subformat*: streamOptimized is what OVA
    exports hold, monolithicFlat a descriptor next to a flat extent file)."""
    out = raw.with_name(f"{raw.stem}{'-' + subformat if subformat else ''}.{fmt}")
    extra = ["-o", f"subformat={subformat}"] if subformat else []
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


def build_btrfs_xfs_disk(path: Path, work: Path) -> dict[str, str]:
    """A GPT disk: partition 1 btrfs with the root in subvolume @ and /home in @home
    (Ubuntu's layout), partition 2 xfs for /srv/data. Built through read-write loop
    devices over each partition's range and real mounts. Returns the ids used."""
    btrfs_uuid, xfs_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    parts = [Part(128, kind="raw"), Part(320, kind="raw")]  # mkfs.xfs wants 300 MB or more
    build_disk(path, parts, work)
    fstab = (
        f"UUID={btrfs_uuid} / btrfs defaults,subvol=@ 0 0\n"
        f"UUID={btrfs_uuid} /home btrfs defaults,subvol=@home 0 0\n"
        f"UUID={xfs_uuid} /srv/data xfs defaults 0 0\n"
    )
    mnt = work / "mnt"
    mnt.mkdir(exist_ok=True)
    start = MIB
    for number, part in enumerate(parts, start=1):
        size = part.size_mib * MIB
        device = sh("losetup", "--show", "-f", "--offset", str(start), "--sizelimit", str(size),
                    path).strip()  # fmt: skip
        try:
            if number == 1:
                sh("mkfs.btrfs", "-q", "-f", "-U", btrfs_uuid, device)
                sh("mount", device, mnt)
                try:
                    sh("btrfs", "-q", "subvolume", "create", mnt / "@")
                    sh("btrfs", "-q", "subvolume", "create", mnt / "@home")
                    _fill(mnt / "@", busybox_root(fstab), with_busybox=True)
                    (mnt / "@" / "srv/data").mkdir(parents=True)
                    (mnt / "@home/alice").mkdir()
                    (mnt / "@home/alice/notes").write_text("in the @home subvolume\n")
                finally:
                    sh("umount", mnt)
            else:
                sh("mkfs.xfs", "-q", "-f", "-m", f"uuid={xfs_uuid}", device)
                sh("mount", device, mnt)
                try:
                    (mnt / "marker").write_text("on xfs\n")
                finally:
                    sh("umount", mnt)
        finally:
            sh("losetup", "-d", device)
        start += size
    return {"btrfs": btrfs_uuid, "xfs": xfs_uuid}
