"""Re-attach lxcfs views inside a running container's mount namespace, without restarting it.

After lxcfs dies, every bind of its files in a container fails with ENOTCONN until it is
replaced. A plain bind mount cannot cross namespaces (the kernel wants the source in the
caller's namespace), but a detached clone made with ``open_tree(OPEN_TREE_CLONE)`` belongs
to no namespace and can be moved into any one with ``move_mount``. So, per container:

1. in a forked child, still in the host namespace, clone each fresh view from the lxcfs home
   and open the container's mount namespace and root (through /proc/PID);
2. ``setns(CLONE_NEWNS)``: the kernel requires a single-threaded caller, which a freshly
   forked child of a threaded parent is;
3. ``chroot`` into the container's root as its init sees it, since setns alone lands on the
   namespace's root, not on an init that chrooted (and paths like /proc/meminfo must mean
   the container's);
4. detach the dead lxcfs binds stacked on each target and move the clone into place.

Kernels without open_tree (before 5.2) fall back to setns plus a bind from the home's path
as the container's init sees it (after the chroot), which works only where that root still
shows the host's live lxcfs home: a namespace that unshared the host's mounts does, a
container pivoted into its own rootfs does not, and there each bind fails with ENOENT after
the dead one was detached (the container then reads the kernel's own files).
"""

from __future__ import annotations

import enum
import json
import os
import select
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxcfs_integration import mountinfo, syscalls
from lxcfs_integration.views import View

REMOUNT_TIMEOUT = 10.0
# A dead bind left by each earlier lxcfs instance can be stacked; more means something is
# re-mounting in a loop, and detaching further would expose nothing useful.
MAX_STACKED = 16


class Method(enum.StrEnum):
    AUTO = "auto"
    OPEN_TREE = "open_tree"  # open_tree + move_mount, Linux >= 5.2
    BIND = "bind"  # setns + bind mount; needs the home visible inside

    def resolve(self) -> Method:
        if self is not Method.AUTO:
            return self
        return Method.OPEN_TREE if syscalls.have_open_tree() else Method.BIND


class Outcome(enum.StrEnum):
    REPLACED = "replaced"  # one or more old lxcfs binds detached, fresh one attached
    ATTACHED = "attached"  # nothing of lxcfs was there; the view is attached now
    FAILED = "failed"

    def ok(self) -> bool:
        return self is not Outcome.FAILED


@dataclass(frozen=True)
class ViewResult:
    target: str
    outcome: Outcome
    detached: int = 0
    error: str | None = None


@dataclass(frozen=True)
class RemountReport:
    pid: int
    method: Method
    results: tuple[ViewResult, ...]
    error: str | None = None  # the whole container failed (no namespace, timeout, ...)

    @property
    def ok(self) -> bool:
        return self.error is None and all(r.outcome.ok() for r in self.results)


def _stacked_counts(pid: int, views: Sequence[View], proc: Path) -> dict[str, int]:
    """How many lxcfs mounts each target carries inside the container, from the host."""
    entries = mountinfo.read(pid, proc=proc)
    return {v.target: len(mountinfo.lxcfs_at(entries, v.target)) for v in views}


def _child(
    pid: int, views: Sequence[View], counts: dict[str, int], method: Method, out: int, proc: Path
) -> None:  # pragma: no cover - runs in the forked child, its results come back as JSON
    results: list[dict[str, object]] = []
    clones: dict[str, int] = {}
    failed: dict[str, str] = {}
    ns_fd = os.open(proc / str(pid) / "ns" / "mnt", os.O_RDONLY | os.O_CLOEXEC)
    root_fd = os.open(proc / str(pid) / "root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if method is Method.OPEN_TREE:
        for view in views:
            try:
                clones[view.target] = syscalls.open_tree(
                    os.fspath(view.source), syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC
                )
            except OSError as exc:
                failed[view.target] = f"clone {view.source}: {exc.strerror}"
    syscalls.setns(ns_fd, syscalls.CLONE_NEWNS, f"/proc/{pid}/ns/mnt")
    os.fchdir(root_fd)
    os.chroot(".")
    os.chdir("/")
    for view in views:
        if view.target in failed:
            results.append(
                {"target": view.target, "outcome": "failed", "error": failed[view.target]}
            )
            continue
        detached = 0
        try:
            for _ in range(min(counts.get(view.target, 0), MAX_STACKED)):
                syscalls.umount2(view.target, syscalls.MNT_DETACH)
                detached += 1
            if method is Method.OPEN_TREE:
                syscalls.move_mount(clones[view.target], view.target)
            else:
                syscalls.bind_mount(os.fspath(view.source), view.target)
            outcome = "replaced" if detached else "attached"
            results.append({"target": view.target, "outcome": outcome, "detached": detached})
        except OSError as exc:
            results.append(
                {
                    "target": view.target,
                    "outcome": "failed",
                    "detached": detached,
                    "error": str(exc.strerror or exc),
                }
            )
    os.write(out, json.dumps(results).encode())


def remount_views(
    pid: int,
    views: Sequence[View],
    *,
    method: Method = Method.AUTO,
    timeout: float = REMOUNT_TIMEOUT,
    proc: Path = Path("/proc"),
) -> RemountReport:
    """Replace the lxcfs views inside the container whose init is *pid* with fresh binds.

    Safe to re-run: a healthy view is replaced by an equal one, never stacked.
    """
    method = method.resolve()
    try:
        counts = _stacked_counts(pid, views, proc)
    except OSError as exc:
        return RemountReport(pid, method, (), f"pid {pid}: {exc.strerror or exc}")
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:  # pragma: no cover - forked child
        code = 0
        try:
            os.close(read_end)
            _child(pid, views, counts, method, write_end, proc)
        except BaseException as exc:
            os.write(write_end, json.dumps({"error": str(exc)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        data, timed_out = _collect(read_end, timeout)
    finally:
        os.close(read_end)
    if timed_out:
        # A view whose lxcfs is stopped (not dead) can hang in the kernel; don't wait forever.
        os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    if timed_out:
        return RemountReport(pid, method, (), f"no result within {timeout:g} s")
    return _report(pid, method, data)


def _collect(fd: int, timeout: float) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"", True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def _report(pid: int, method: Method, data: bytes) -> RemountReport:
    try:
        decoded = json.loads(data or b"null")
    except json.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict):
        return RemountReport(pid, method, (), str(decoded.get("error")))
    if not isinstance(decoded, list):
        return RemountReport(pid, method, (), "the remount helper died without a result")
    results = tuple(
        ViewResult(
            target=str(item["target"]),
            outcome=Outcome(item["outcome"]),
            detached=int(item.get("detached", 0)),
            error=item.get("error"),
        )
        for item in decoded
    )
    return RemountReport(pid, method, results)
