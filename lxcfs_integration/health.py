"""Is an lxcfs home serving, and are a container's views mounted and readable?

Path existence proves nothing: a dead FUSE mount still exists in mountinfo and its files
fail with ENOTCONN ("Transport endpoint is not connected"). Every check here makes a real
read, under a timeout, because a stopped (not dead) lxcfs makes reads hang instead.
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxcfs_integration import mountinfo
from lxcfs_integration.views import View, ViewKind

READ_TIMEOUT = 2.0


def try_read(path: Path, *, directory: bool = False, timeout: float = READ_TIMEOUT) -> str | None:
    """Read *path* for real; None when it answered, else why not.

    The read runs in a daemon thread so a hung FUSE request cannot hang the caller; the
    thread ends with the request, or with the process.
    """
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            if directory:
                os.listdir(path)
            else:
                with open(path, "rb") as f:
                    f.read(4096)
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc.strerror or str(exc))

    worker = threading.Thread(target=attempt, name=f"lxcfs-read {path}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"no answer within {timeout:g} s"
    return outcome[0]


class HomeState(enum.StrEnum):
    ABSENT = "absent"  # no lxcfs mounted there
    DEAD = "dead"  # mounted, but its daemon is gone or not answering
    HEALTHY = "healthy"

    def serving(self) -> bool:
        return self is HomeState.HEALTHY

    def needs_unmount(self) -> bool:
        return self is HomeState.DEAD


@dataclass(frozen=True)
class HomeStatus:
    home: Path
    state: HomeState
    error: str | None = None


def home_status(home: Path, *, timeout: float = READ_TIMEOUT) -> HomeStatus:
    """Classify the lxcfs mount at *home* from this process's mountinfo and one real read."""
    home = Path(os.path.realpath(home))
    if not mountinfo.lxcfs_at(mountinfo.read(), os.fspath(home)):
        return HomeStatus(home, HomeState.ABSENT)
    error = try_read(home / "proc" / "uptime", timeout=timeout)
    if error is not None:
        return HomeStatus(home, HomeState.DEAD, error)
    return HomeStatus(home, HomeState.HEALTHY)


@dataclass(frozen=True)
class ViewHealth:
    target: str
    mounted: bool  # the topmost mount on the target is lxcfs
    readable: bool
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.mounted and self.readable


@dataclass(frozen=True)
class ContainerHealth:
    pid: int
    views: tuple[ViewHealth, ...]
    error: str | None = None  # set when the container could not be inspected at all

    @property
    def healthy(self) -> bool:
        return self.error is None and bool(self.views) and all(v.healthy for v in self.views)


def container_health(
    pid: int, views: Sequence[View], *, timeout: float = READ_TIMEOUT, proc: Path = Path("/proc")
) -> ContainerHealth:
    """Check each view of the container whose init is *pid*, from the host.

    mountinfo of *pid* names its mount points relative to its own root, and
    ``/proc/PID/root`` walks the container's mount tree, so both see what the container sees.
    (The read itself is answered for the host's cgroup, since lxcfs answers per reader: it
    proves the connection, not the values.)
    """
    try:
        entries = mountinfo.read(pid, proc=proc)
    except OSError as exc:
        return ContainerHealth(pid, (), f"cannot read mountinfo of pid {pid}: {exc.strerror}")
    root = proc / str(pid) / "root"
    results = []
    for view in views:
        top = mountinfo.top_at(entries, view.target)
        mounted = top is not None and top.is_lxcfs
        read_error = try_read(
            root / view.target.lstrip("/"), directory=view.kind is ViewKind.DIR, timeout=timeout
        )
        error = read_error
        if not mounted and error is None:
            error = "not mounted: the container sees the kernel's own file"
        results.append(ViewHealth(view.target, mounted, read_error is None, error))
    return ContainerHealth(pid, tuple(results))
