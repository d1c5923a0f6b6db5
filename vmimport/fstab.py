"""A guest's /etc/fstab: parsed, each entry classified, and mapped to the image's volumes.

Pure functions: no device is touched here, so all of it is unit-tested on text.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from vmimport.volumes import Volume

# Filesystems that live on another machine. Entries with _netdev count too.
NETWORK_FSTYPES = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "sshfs", "fuse.sshfs", "davfs",
        "fuse.davfs2", "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph", "ocfs2", "gfs2",
        "lustre", "afs", "9p", "fuse.s3fs", "fuse.rclone",
    }
)  # fmt: skip
# Filesystems the kernel makes up; the container runtime provides its own.
VIRTUAL_FSTYPES = frozenset(
    {
        "proc", "sysfs", "devpts", "devtmpfs", "tmpfs", "ramfs", "cgroup", "cgroup2",
        "securityfs", "debugfs", "tracefs", "configfs", "pstore", "efivarfs", "bpf",
        "mqueue", "hugetlbfs", "fusectl", "binfmt_misc", "autofs", "overlay", "none",
    }
)  # fmt: skip
REMOVABLE_FSTYPES = frozenset({"iso9660", "udf"})

# Disk names a guest sees its disks by: /dev/sda2, /dev/vdb1, /dev/xvda1, /dev/hda1,
# /dev/nvme0n1p2, /dev/mmcblk0p1. The image is one disk; which one it was is guessed from
# the root entry.
_DISK_PARTITION = re.compile(
    r"^/dev/(?P<disk>(?:[shv]d|xvd)[a-z]+|nvme\d+n\d+|mmcblk\d+)(?:p)?(?P<number>\d+)$"
)


class Kind(enum.StrEnum):
    """What an fstab entry is, for the import."""

    FILESYSTEM = "filesystem"
    SWAP = "swap"
    NETWORK = "network"
    VIRTUAL = "virtual"
    BIND = "bind"
    REMOVABLE = "removable"

    def wants_volume(self) -> bool:
        return self is Kind.FILESYSTEM


@dataclass(frozen=True)
class Entry:
    spec: str
    target: str
    fstype: str
    options: tuple[str, ...]
    line: int

    @property
    def kind(self) -> Kind:
        opts = set(self.options)
        if self.fstype == "swap":
            return Kind.SWAP
        if opts & {"bind", "rbind"}:
            return Kind.BIND
        if self.fstype in NETWORK_FSTYPES or "_netdev" in opts or re.match(r"^[^/]+:/", self.spec):
            return Kind.NETWORK
        if self.fstype in VIRTUAL_FSTYPES:
            return Kind.VIRTUAL
        if self.fstype in REMOVABLE_FSTYPES or re.match(r"^/dev/(sr|fd|cdrom)", self.spec):
            return Kind.REMOVABLE
        return Kind.FILESYSTEM

    def subvolume_options(self) -> tuple[str, ...]:
        """The btrfs options that choose what to mount (kept for the import's mount)."""
        return tuple(o for o in self.options if o.startswith(("subvol=", "subvolid=")))


def _unescape(field: str) -> str:
    # fstab escapes blanks as octal: \040 for a space, \011 for a tab.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse(text: str) -> list[Entry]:
    """The entries of an fstab, comments and blank lines skipped. Lines with fewer than
    three fields are skipped as mount(8) would."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 3:
            continue
        options = tuple(fields[3].split(",")) if len(fields) > 3 else ("defaults",)
        spec = _unescape(fields[0])
        target = _unescape(fields[1])
        if target != "/" and target not in ("none", "swap"):
            target = target.rstrip("/")
        entries.append(Entry(spec, target, fields[2], options, number))
    return entries


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'" else value


def _by(spec: str) -> tuple[str, str] | None:
    """("uuid" | "label" | "partuuid" | "partlabel", value) for a tag or a by-* link."""
    for tag in ("UUID", "LABEL", "PARTUUID", "PARTLABEL"):
        if spec.startswith(tag + "="):
            return tag.lower(), _unquote(spec[len(tag) + 1 :])
        link = f"/dev/disk/by-{tag.lower()}/"
        if spec.startswith(link):
            return tag.lower(), _unescape_udev(spec[len(link) :])
    return None


def _unescape_udev(name: str) -> str:
    # udev writes unsafe characters in by-label names as \xNN.
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)


def _mapper_name(vg: str, lv: str) -> str:
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


def guest_disk(entries: list[Entry]) -> str | None:
    """The guest's name for this disk (sda, vda, nvme0n1), from the root entry when it
    names a partition by device path."""
    for entry in entries:
        if entry.target == "/":
            match = _DISK_PARTITION.match(entry.spec)
            if match:
                return match.group("disk")
    return None


@dataclass(frozen=True)
class Resolution:
    volume: Volume | None
    reason: str | None = None  # why nothing was found


def resolve(spec: str, volumes: list[Volume], disk: str | None) -> Resolution:
    """The volume an fstab *spec* names among the image's *volumes*."""
    tagged = _by(spec)
    if tagged is not None:
        tag, value = tagged
        for volume in volumes:
            have = getattr(volume, tag)
            if have is not None and (
                have == value if tag.endswith("label") else have.lower() == value.lower()
            ):
                return Resolution(volume)
        return Resolution(None, f"no volume on the image has {tag.upper()}={value}")
    if spec.startswith("/dev/mapper/") or re.match(r"^/dev/[^/]+/[^/]+$", spec):
        name = spec.removeprefix("/dev/mapper/")
        for volume in volumes:
            lv = volume.lv
            if lv is not None and (spec == lv.path or name == _mapper_name(lv.vg, lv.lv)):
                return Resolution(volume)
        if spec.startswith("/dev/mapper/"):
            return Resolution(None, f"{spec} is not a logical volume on the image")
    match = _DISK_PARTITION.match(spec)
    if match:
        if disk is not None and match.group("disk") != disk:
            return Resolution(None, f"{spec} is on another disk than the image ({disk})")
        number = int(match.group("number"))
        for volume in volumes:
            if volume.number == number and volume.lv is None:
                return Resolution(volume)
        return Resolution(None, f"the image has no partition {number}")
    return Resolution(None, f"{spec} names no volume on the image")
