"""What richc leaves on the host, kind by kind, so a test can compare before and after.

Each kind is a sorted tuple of strings, taken from the kernel's own view (mountinfo, sysfs,
/proc, `losetup -J`), never from richc's. Only things that belong to the test are listed:
mounts and loop devices under the test root, cgroups named after the test's containers,
processes whose command line, cwd or root mentions the test root, links named like LXC's
host-side veths. Other helpers share this machine, so a snapshot of everything would
compare their work too.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# liblxc's cgroup names: lxc.payload.NAME (the container), lxc.monitor.NAME (its monitor),
# and, on older liblxc, plain NAME or lxc/NAME.
_CGROUP_PREFIXES = ("lxc.payload.", "lxc.monitor.", "lxc.pivot.", "")


@dataclass(frozen=True)
class HostSnapshot:
    mounts: tuple[str, ...]
    loop_devices: tuple[str, ...]
    cgroups: tuple[str, ...]
    links: tuple[str, ...]
    processes: tuple[str, ...]
    state_files: tuple[str, ...]

    def differences(self, later: HostSnapshot) -> dict[str, dict[str, list[str]]]:
        """Per kind, what *later* has that this one has not (``added``) and the reverse."""
        out: dict[str, dict[str, list[str]]] = {}
        for f in fields(self):
            before, after = set(getattr(self, f.name)), set(getattr(later, f.name))
            if before != after:
                out[f.name] = {
                    "added": sorted(after - before),
                    "removed": sorted(before - after),
                }
        return out

    def describe(self) -> str:
        return ", ".join(f"{f.name}={len(getattr(self, f.name))}" for f in fields(self))


def snapshot(root: Path, names: Iterable[str], *, state_ignore: Iterable[str] = ()) -> HostSnapshot:
    """The host as far as *root* (a richc --root) and containers called *names* go.

    *state_ignore* are path prefixes, relative to *root*, left out of ``state_files``.
    """
    root = root.resolve()
    wanted = sorted(set(names))
    return HostSnapshot(
        mounts=_mounts(root),
        loop_devices=_loop_devices(root),
        cgroups=_cgroups(wanted),
        links=_links(wanted),
        processes=_processes(root),
        state_files=_state_files(root, tuple(state_ignore)),
    )


def _mounts(root: Path) -> tuple[str, ...]:
    prefix = str(root)
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            parts = line.split()
            mount_point = parts[4].replace("\\040", " ")
            # The source (after " - fstype ") may name the root too: a loop image's file.
            if prefix in mount_point or prefix in line.split(" - ", 1)[-1]:
                fstype = line.split(" - ", 1)[-1].split()[0]
                found.append(f"{mount_point} ({fstype})")
    return tuple(sorted(found))


def _loop_devices(root: Path) -> tuple[str, ...]:
    out = subprocess.run(
        ["losetup", "-J", "--list"], capture_output=True, text=True, check=False
    ).stdout
    if not out.strip():
        return ()
    devices = json.loads(out).get("loopdevices", [])
    return tuple(
        sorted(
            f"{d['name']} -> {d.get('back-file')}"
            for d in devices
            if str(root) in str(d.get("back-file") or "")
        )
    )


def _cgroups(names: list[str]) -> tuple[str, ...]:
    if not names:
        return ()
    targets = {prefix + n for n in names for prefix in _CGROUP_PREFIXES}
    found: list[str] = []
    try:
        hierarchies = sorted(CGROUP_ROOT.iterdir())
    except OSError:
        return ()
    for hierarchy in hierarchies:
        for parent in (hierarchy, hierarchy / "lxc"):
            try:
                entries = os.listdir(parent)
            except OSError:
                continue
            found.extend(str(parent / e) for e in entries if e in targets)
    return tuple(sorted(found))


def _links(names: list[str]) -> tuple[str, ...]:
    # LXC names a host-side veth vethXXXXXX unless told otherwise; a richc bridge network
    # might name it after the container.
    try:
        entries = os.listdir("/sys/class/net")
    except OSError:
        return ()
    return tuple(sorted(e for e in entries if e.startswith("veth") or any(n in e for n in names)))


def _processes(root: Path) -> tuple[str, ...]:
    prefix = str(root)
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        base = Path("/proc", entry)
        try:
            cmdline = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        where = []
        for link in ("cwd", "root"):
            with contextlib.suppress(OSError):
                where.append(os.readlink(base / link))
        if prefix in cmdline or any(w.startswith(prefix) for w in where):
            found.append(f"{entry} {cmdline.strip()[:200]}")
    return tuple(sorted(found))


def _state_files(root: Path, ignore: tuple[str, ...]) -> tuple[str, ...]:
    found = []
    for top in ("var/lib/richc/containers", "run/richc", "var/log/richc", "etc/systemd"):
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            # A container's rootfs is its own business (and may be a mount): its directory
            # is enough to see that it is still there.
            if "rootfs" in dirnames:
                dirnames.remove("rootfs")
            for filename in [*filenames, *(d + "/" for d in dirnames)]:
                rel = os.path.relpath(os.path.join(dirpath, filename), root)
                if not (ignore and rel.startswith(ignore)):
                    found.append(rel)
    return tuple(sorted(found))


def wait_settled(
    root: Path, names: Iterable[str], *, state_ignore: Iterable[str] = (), timeout: float = 20.0
) -> HostSnapshot:
    """A snapshot once processes under *root* are gone (or *timeout* passed): a stopped
    container's monitor and poststop callback may exit a moment after richc returns."""
    import time

    wanted = list(names)
    deadline = time.monotonic() + timeout
    while True:
        snap = snapshot(root, wanted, state_ignore=state_ignore)
        if not snap.processes or time.monotonic() >= deadline:
            return snap
        time.sleep(0.1)
