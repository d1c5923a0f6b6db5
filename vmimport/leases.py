"""What a run has made, written down before it is made, so that anything a killed run
leaves behind can be released later.

The leases file (``leases.json`` in the scratch directory) lists, in order, every loop
device, nbd connection, volume-group activation, mount, directory and temporary file. An
entry is written *before* the action, so a SIGKILL between the two leaves an entry for
something that may not exist: releasing it then finds nothing and is done. Release runs
newest first. A lock file held for the whole run (flock, dropped by the kernel when the
process dies) tells a live run from a dead one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vmimport import loop, lvm, mounts, nbd
from vmimport.errors import CleanupIncomplete, ScratchBusy, ToolFailed

LEASES = "leases.json"
LOCK = "lock"

Lease = dict[str, Any]


class Leases:
    """The leases of one scratch directory; hold :func:`locked` around its use."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.path = scratch / LEASES
        self._next = 0
        self.entries: list[Lease] = []
        if self.path.exists():
            self.entries = json.loads(self.path.read_text() or "[]")
            self._next = max((e["id"] for e in self.entries), default=-1) + 1

    def _save(self) -> None:
        # Write-and-rename, so a kill mid-write leaves the old list or the new, never half.
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(self.entries, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def record(self, kind: str, **fields: Any) -> Lease:
        lease: Lease = {"id": self._next, "kind": kind, **fields}
        self._next += 1
        self.entries.append(lease)
        self._save()
        return lease

    def update(self, lease: Lease, **fields: Any) -> None:
        lease.update(fields)
        self._save()

    def release(self, lease: Lease) -> None:
        """Undo what *lease* stands for (if it is there at all) and forget it."""
        _undo(lease)
        self.entries.remove(lease)
        self._save()

    def release_all(self) -> None:
        """Release every lease, newest first. What cannot be released stays in the file
        and is reported; the file is removed when nothing is left."""
        left: list[str] = []
        for lease in reversed(list(self.entries)):
            try:
                self.release(lease)
            except OSError as exc:
                left.append(f"{_describe(lease)}: {exc}")
        if left:
            raise CleanupIncomplete(
                f"could not release {len(left)} thing(s): " + "; ".join(left),
                left,
                hint="stop whatever uses them (a shell inside the tree?) and run cleanup again",
            )
        self.path.unlink(missing_ok=True)

    # What a run makes, each recorded first.

    def attach_loop(
        self, backing: str, *, offset: int = 0, size: int | None = None, partscan: bool = False
    ) -> str:
        lease = self.record("loop", backing=os.path.realpath(backing), offset=offset)
        try:
            device = loop.attach_ro(backing, offset=offset, size=size, partscan=partscan)
        except BaseException:
            self.release(lease)
            raise
        self.update(lease, device=device)
        return device

    def connect_nbd(self, image: str, fmt: str, device: str) -> None:
        lease = self.record("nbd", device=device)
        try:
            nbd.connect(image, fmt, device)
        except BaseException:
            self.release(lease)
            raise

    def activate_vgs(self, vgs: list[str], devices: list[str]) -> None:
        lease = self.record("vg", vgs=vgs, devices=devices)
        try:
            lvm.activate(vgs, devices)
        except BaseException:
            self.release(lease)
            raise

    def make_dir(self, path: Path) -> Path:
        self.record("dir", path=str(path))
        path.mkdir(parents=True, exist_ok=True)
        return path

    def temp_file(self, path: Path) -> Path:
        self.record("file", path=str(path))
        return path

    def mount(self, device: str, target: Path, fstype: str, extra: tuple[str, ...] = ()) -> Lease:
        lease = self.record("mount", target=str(target), device=device)
        try:
            mounts.mount_ro(device, target, fstype, extra)
        except BaseException:
            self.release(lease)
            raise
        return lease


def _describe(lease: Lease) -> str:
    kind = lease["kind"]
    if kind == "loop":
        return f"loop device {lease.get('device', '?')} on {lease['backing']}"
    if kind == "mount":
        return f"mount at {lease['target']}"
    if kind == "vg":
        return f"volume group(s) {', '.join(lease['vgs'])}"
    if kind == "nbd":
        return f"nbd device {lease['device']}"
    return f"{kind} {lease.get('path', '')}"


def _undo(lease: Lease) -> None:
    kind = lease["kind"]
    if kind == "mount":
        mounts.unmount(lease["target"])
    elif kind == "loop":
        device = lease.get("device")
        wanted = (lease["backing"], lease["offset"])
        if device and loop.binding(device) == wanted:
            devices = [device]
        else:
            # Killed between losetup and writing its answer down, or the device number was
            # reused since: find ours by backing file and offset instead.
            devices = [] if device else loop.find(lease["backing"], lease["offset"])
        for dev in devices:
            loop.detach(dev)
    elif kind == "vg":
        with contextlib.suppress(ToolFailed):
            # Not active (activation never happened, or a host without LVM) is fine.
            lvm.deactivate(lease["vgs"], lease["devices"])
    elif kind == "nbd":
        with contextlib.suppress(ToolFailed):
            nbd.disconnect(lease["device"])
    elif kind == "file":
        Path(lease["path"]).unlink(missing_ok=True)
    elif kind == "dir":
        path = Path(lease["path"])
        if not mounts.mounts_under(path):
            # rmdir, never a recursive removal: it only ever held mount points.
            with contextlib.suppress(FileNotFoundError):
                path.rmdir()


@contextlib.contextmanager
def locked(scratch: Path) -> Iterator[Leases]:
    """The scratch directory's leases, held exclusively. Leftovers of a dead run are
    released first. Raise ScratchBusy when a live process holds it."""
    scratch.mkdir(parents=True, exist_ok=True)
    fd = os.open(scratch / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScratchBusy(
                "another import is using this scratch directory",
                scratch,
                hint="wait for it to finish, or use another scratch directory",
            ) from None
        leases = Leases(scratch)
        if leases.entries:
            leases.release_all()
        yield leases
    finally:
        os.close(fd)


def cleanup(scratch_dir: str | os.PathLike[str]) -> None:
    """Release whatever a killed run left in *scratch_dir*: unmount, detach loop devices,
    deactivate volume groups, disconnect nbd, remove the converted image. Safe to call
    any time; raise ScratchBusy while a live run holds it."""
    scratch = Path(scratch_dir)
    if not scratch.exists():
        return
    with locked(scratch):
        pass
