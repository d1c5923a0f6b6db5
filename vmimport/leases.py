"""What a run has made, written down before it is made, so that anything a killed run
leaves behind can be released later.

The leases file (``leases.jsonl`` in the scratch directory) is a journal, one JSON object
a line: ``{"add": {...}}`` before each loop device, nbd connection, volume-group
activation, mount, directory and temporary file is made, ``{"set": ID, ...}`` when its
name is known (the loop device losetup picked), ``{"drop": ID}`` once it is released.
Replaying the lines gives what is still held. An entry is written *before* the action, so
a SIGKILL between the two leaves an entry for something that may not exist: releasing it
then finds nothing and is done. Release runs newest first. A lock file held for the whole
run (flock, dropped by the kernel when the process dies) tells a live run from a dead one.

Appending, not rewriting: one small O_APPEND write a change, never torn by a kill, and a
last line cut short is skipped on replay. Rewriting the file (write, rename) cost ~40 ms
a change while the converted image was being written back, a third of a small import.
No fsync: the file must outlive a killed process, which the page cache does; a machine
crash takes the loop devices and mounts with it anyway.
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

LEASES = "leases.jsonl"
LOCK = "lock"

Lease = dict[str, Any]


def replay(text: str) -> list[Lease]:
    """The leases still held after the journal *text*, oldest first."""
    held: dict[int, Lease] = {}
    for line in text.splitlines():
        try:
            change = json.loads(line)
        except json.JSONDecodeError:
            continue  # a write the kill cut short: the action it announced never began
        if "add" in change:
            held[change["add"]["id"]] = change["add"]
        elif "set" in change and change["set"] in held:
            held[change["set"]].update(change["fields"])
        elif "drop" in change:
            held.pop(change["drop"], None)
    return list(held.values())


class Leases:
    """The leases of one scratch directory; hold :func:`locked` around its use."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.path = scratch / LEASES
        self.entries: list[Lease] = replay(self.path.read_text()) if self.path.exists() else []
        self._next = max((e["id"] for e in self.entries), default=-1) + 1
        self._fd: int | None = None

    def _append(self, change: dict[str, Any]) -> None:
        if self._fd is None:
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        os.write(self._fd, (json.dumps(change, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def record(self, kind: str, **fields: Any) -> Lease:
        lease: Lease = {"id": self._next, "kind": kind, **fields}
        self._next += 1
        self.entries.append(lease)
        self._append({"add": lease})
        return lease

    def update(self, lease: Lease, **fields: Any) -> None:
        lease.update(fields)
        self._append({"set": lease["id"], "fields": fields})

    def release(self, lease: Lease) -> None:
        """Undo what *lease* stands for (if it is there at all) and forget it."""
        _undo(lease)
        self.entries.remove(lease)
        self._append({"drop": lease["id"]})

    def release_all(self) -> None:
        """Release every lease, newest first. What cannot be released stays in the file
        and is reported; the file is removed when nothing is left."""
        left: list[str] = []
        for lease in reversed(list(self.entries)):
            try:
                self.release(lease)
            except OSError as exc:
                left.append(f"{_describe(lease)}: {exc}")
        self.close()
        if left:
            # Keep only what is still held, so retries do not grow the journal.
            tmp = self.path.with_name(LEASES + ".tmp")
            tmp.write_text("".join(json.dumps({"add": e}) + "\n" for e in self.entries))
            os.replace(tmp, self.path)
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
        try:
            if leases.entries:
                leases.release_all()
            yield leases
        finally:
            leases.close()
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
