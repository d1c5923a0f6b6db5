"""Choosing the guest's root filesystem among the image's volumes, and the mount plan
its /etc/fstab implies for the rest."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vmimport import fstab
from vmimport.errors import AmbiguousRoot, EncryptedRoot, MountFailed, RootNotFound
from vmimport.leases import Leases
from vmimport.volumes import Volume

ROOT_FSTYPES = ("ext2", "ext3", "ext4", "xfs", "btrfs")
MAX_SYMLINKS = 40  # as the kernel's path walk allows


def resolve_in(root: Path, guest_path: str) -> Path:
    """The host path of *guest_path* inside the tree at *root*, following the guest's
    symlinks as the guest would see them: an absolute link restarts at *root*, and ".."
    never climbs above it. The last component is not followed (callers lexists it)."""
    parts = list(PurePosixPath("/", guest_path).parts[1:])
    current = root
    followed = 0
    while parts:
        name = parts.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / name
        if not parts or not candidate.is_symlink():
            current = candidate
            continue
        followed += 1
        if followed > MAX_SYMLINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", str(candidate))
        target = os.readlink(candidate)
        if target.startswith("/"):
            current = root
        parts = list(PurePosixPath(target).parts) + parts
        if parts and parts[0] == "/":
            parts.pop(0)
    return current


def _exists_in(root: Path, guest_path: str) -> bool:
    return os.path.lexists(resolve_in(root, guest_path))


def _read_in(root: Path, guest_path: str, limit: int = 1 << 20) -> str | None:
    """A small text file of the guest, following its symlinks inside the guest only
    (/etc/os-release is usually one); None when it is missing or not a regular file."""
    for _ in range(MAX_SYMLINKS):
        path = resolve_in(root, guest_path)
        if not path.is_symlink():
            break
        guest_path = str(PurePosixPath(guest_path).parent / os.readlink(path))
    else:
        return None
    try:
        # O_NOFOLLOW: the last component was checked above, but never trust the host's
        # path walk with a guest's link.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read(limit).decode(errors="replace")


def looks_like_root(tree: Path) -> bool:
    """An installed system: /etc/fstab, plus /sbin/init or an os-release file."""
    return _exists_in(tree, "etc/fstab") and (
        _exists_in(tree, "sbin/init")
        or _exists_in(tree, "etc/os-release")
        or _exists_in(tree, "usr/lib/os-release")
    )


@dataclass(frozen=True)
class RootCandidate:
    volume: Volume
    options: tuple[str, ...]  # subvol=... when the root is a btrfs subvolume
    fstab: str
    crypttab: str
    os_release: str | None


@contextlib.contextmanager
def _mounted(leases: Leases, volume: Volume, where: Path) -> Iterator[Path]:
    lease = leases.mount(volume.device, where, volume.fstype or "auto")
    try:
        yield where
    finally:
        leases.release(lease)


def _inspect(
    leases: Leases, volume: Volume, probe: Path, force: bool, unmountable: list[str]
) -> RootCandidate | None:
    assert volume.fstype is not None
    try:
        with _mounted(leases, volume, probe) as tree:
            subvols: list[tuple[tuple[str, ...], Path]] = [((), tree)]
            if volume.fstype == "btrfs" and not looks_like_root(tree):
                # Distributions put the root in a subvolume (@, @rootfs, root): look one
                # level down and mount that subvolume later.
                subvols += [
                    ((f"subvol=/{d.name}",), d)
                    for d in sorted(tree.iterdir())
                    if d.is_dir() and not d.is_symlink()
                ]
            for options, where in subvols:
                if looks_like_root(where) or (force and options == ()):
                    return RootCandidate(
                        volume,
                        options,
                        _read_in(where, "etc/fstab") or "",
                        _read_in(where, "etc/crypttab") or "",
                        _read_in(where, "etc/os-release") or _read_in(where, "usr/lib/os-release"),
                    )
    except OSError as exc:
        if force:
            raise MountFailed(
                f"{volume.describe()} ({volume.fstype}) cannot be mounted read-only: "
                f"{exc.strerror}",
                volume.device,
            ) from None
        # Not mountable here, so not a root we can use; said in the error if none is found.
        unmountable.append(f"{volume.describe()} ({volume.fstype}): {exc.strerror}")
        return None
    return None


def choose_root(
    volumes: list[Volume],
    probe: Path,
    leases: Leases,
    root_partition: int | str | None = None,
    unmountable: list[str] | None = None,
) -> RootCandidate | None:
    """The volume that holds the guest's root. With *root_partition* (a partition number,
    or "VG/LV"), that one; otherwise every ext*/xfs/btrfs volume is mounted read-only at
    *probe* in turn and looked into. None when no volume looks like a root; the volumes
    that could not even be mounted are then added to *unmountable*, with why."""
    if unmountable is None:
        unmountable = []
    if root_partition is not None:
        chosen = [v for v in volumes if _names(v, root_partition)]
        if not chosen:
            raise RootNotFound(
                f"the image has no partition {root_partition}",
                hint="partitions found: " + ", ".join(_summary(v) for v in volumes),
            )
        volume = chosen[0]
        if volume.is_luks():
            raise encrypted_root(volume)
        if volume.fstype not in ROOT_FSTYPES:
            raise RootNotFound(
                f"{volume.describe()} holds {volume.fstype or 'no known filesystem'}, "
                "not a root filesystem (ext2/3/4, xfs or btrfs)"
            )
        return _inspect(leases, volume, probe, True, unmountable)
    found = []
    for volume in volumes:
        if volume.fstype in ROOT_FSTYPES:
            candidate = _inspect(leases, volume, probe, False, unmountable)
            if candidate is not None:
                found.append(candidate)
    if len(found) > 1:
        # Two systems (or a rescue copy): prefer the one whose fstab names itself as /.
        selfnamed = [c for c in found if _names_itself(c, volumes)]
        if len(selfnamed) == 1:
            return selfnamed[0]
        raise AmbiguousRoot(
            "more than one volume holds a root filesystem: "
            + ", ".join(_summary(c.volume) for c in found),
            hint="choose one with --root-partition N",
        )
    return found[0] if found else None


def _names(volume: Volume, wanted: int | str) -> bool:
    if volume.lv is not None:
        return str(wanted) in (f"{volume.lv.vg}/{volume.lv.lv}", volume.lv.dm_path)
    return str(volume.number) == str(wanted) or (volume.number is None and str(wanted) == "0")


def _names_itself(candidate: RootCandidate, volumes: list[Volume]) -> bool:
    entries = fstab.parse(candidate.fstab)
    disk = fstab.guest_disk(entries)
    for entry in entries:
        if entry.target == "/":
            return fstab.resolve(entry.spec, volumes, disk).volume == candidate.volume
    return False


def _summary(volume: Volume) -> str:
    return f"{volume.describe()} ({volume.fstype or 'unknown'}, {volume.size >> 20} MiB)"


def encrypted_root(volume: Volume) -> EncryptedRoot:
    return EncryptedRoot(
        f"the guest's root is encrypted ({volume.describe()} is LUKS)",
        volume.device,
        hint="decrypt it first: cryptsetup open --readonly DEVICE NAME, then import "
        "/dev/mapper/NAME; or convert the guest to a plain image",
    )


@dataclass(frozen=True)
class PlannedMount:
    """A filesystem to mount read-only at *target* in the guest's tree."""

    target: str
    volume: Volume
    fstype: str
    options: tuple[str, ...] = ()
    spec: str = ""  # as the guest's fstab names it


@dataclass(frozen=True)
class Dropped:
    """An fstab entry that is not part of the imported tree, and why."""

    target: str
    spec: str
    fstype: str
    reason: str


@dataclass(frozen=True)
class MountPlan:
    root: PlannedMount
    mounts: tuple[PlannedMount, ...]  # in mount order: parents first
    dropped: tuple[Dropped, ...]
    os_release: str | None = None

    def unresolved(self) -> tuple[Dropped, ...]:
        """Entries that name a volume not found (perhaps on LVM not yet active)."""
        return tuple(d for d in self.dropped if d.reason.startswith(NOT_FOUND))


NOT_FOUND = "not on the image: "
_KIND_REASONS = {
    fstab.Kind.SWAP: "swap (the container has none)",
    fstab.Kind.NETWORK: "network filesystem (mount it in the container or on the host)",
    fstab.Kind.VIRTUAL: "virtual filesystem (the container runtime provides its own)",
    fstab.Kind.BIND: "bind mount (its source is copied with the tree)",
    fstab.Kind.REMOVABLE: "removable media",
}


def _crypt_names(crypttab: str) -> set[str]:
    names = set()
    for line in crypttab.splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            names.add(fields[0])
    return names


def plan_mounts(root: RootCandidate, volumes: list[Volume]) -> MountPlan:
    """The mounts the guest's fstab asks for that live on the image, and the rest dropped
    with a reason. Pure: nothing is mounted here."""
    entries = fstab.parse(root.fstab)
    disk = fstab.guest_disk(entries)
    crypt = _crypt_names(root.crypttab)
    planned: dict[str, PlannedMount] = {}
    dropped: list[Dropped] = []

    def drop(entry: fstab.Entry, reason: str) -> None:
        dropped.append(Dropped(entry.target, entry.spec, entry.fstype, reason))

    for entry in entries:
        if entry.target == "/":
            continue
        if not entry.kind.wants_volume():
            drop(entry, _KIND_REASONS[entry.kind])
            continue
        if "noauto" in entry.options:
            drop(entry, "noauto (not mounted at boot)")
            continue
        mapper = entry.spec.removeprefix("/dev/mapper/")
        if entry.spec.startswith("/dev/mapper/") and mapper in crypt:
            drop(entry, "encrypted volume (in /etc/crypttab): decrypt it first")
            continue
        found = fstab.resolve(entry.spec, volumes, disk)
        volume = found.volume
        if volume is None:
            drop(entry, NOT_FOUND + (found.reason or entry.spec))
            continue
        if volume.is_luks():
            drop(entry, "encrypted volume (LUKS): decrypt it first")
            continue
        if volume.fstype in (None, "swap", "LVM2_member", "jbd"):
            drop(entry, f"{volume.describe()} holds no mountable filesystem")
            continue
        if volume == root.volume and not entry.subvolume_options():
            drop(entry, "the root filesystem itself")
            continue
        if entry.target in planned:
            old = planned[entry.target]
            dropped.append(Dropped(old.target, old.spec, old.fstype, "shadowed by a later entry"))
        planned[entry.target] = PlannedMount(
            entry.target, volume, volume.fstype, entry.subvolume_options(), entry.spec
        )
    order = sorted(planned.values(), key=lambda m: len(PurePosixPath(m.target).parts))
    root_spec = next((e.spec for e in entries if e.target == "/"), "")
    return MountPlan(
        PlannedMount("/", root.volume, root.volume.fstype or "auto", root.options, root_spec),
        tuple(order),
        tuple(dropped),
        root.os_release,
    )
