"""Process facts read from /proc: is a recorded init still the same process, or did the
container reboot into a new one?"""

from __future__ import annotations

import os
from typing import Protocol


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return data[data.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def is_same_process(pid: int | None, recorded_start: int | None) -> bool:
    """True if *pid* is alive and is the process that started at *recorded_start*.

    Comparing start times guards against the pid having been reused after the init died.
    """
    if not pid:
        return False
    current = start_time(pid)
    return current is not None and (recorded_start is None or current == recorded_start)


class RecordedInit(Protocol):
    """What richc records of a running init (richc.state.InitRecord)."""

    @property
    def pid(self) -> int: ...
    @property
    def pid_start_time(self) -> int | None: ...
    @property
    def parent_pid(self) -> int | None: ...
    @property
    def parent_start_time(self) -> int | None: ...


def parent_of_init(pid: int) -> tuple[int, int] | None:
    """An init's parent (LXC's monitor) and its start time, to follow a reboot later."""
    ppid = parent(pid)
    started = start_time(ppid) if ppid else None
    if not ppid or ppid == 1 or started is None:
        return None
    return ppid, started


def live_pid(record: RecordedInit | None) -> int | None:
    """The recorded init's pid if the container runs (no runtime call; follows reboots)."""
    found = recorded_init(record)
    return None if found is None else found[0]


def recorded_init(record: RecordedInit | None) -> tuple[int, int | None] | None:
    """The container's live init as ``(pid, start_time)``, or None if it is not running.

    That is the init recorded at start, or, after a reboot from inside the container, the
    new init its runtime started: LXC's monitor stays and forks a new init into a new pid
    namespace, so the monitor's only child in another pid namespace is the container's
    init now. No runtime call: this is cheap enough for every row of ``richc list``.
    """
    if record is None:
        return None
    pid, recorded = record.pid, record.pid_start_time
    if is_same_process(pid, recorded):
        return pid, recorded
    monitor, monitor_start = record.parent_pid, record.parent_start_time
    if monitor is None or not is_same_process(monitor, monitor_start):
        return None
    inits = [c for c in _children(monitor) if _pid_ns(c) not in (None, _pid_ns(monitor))]
    if len(inits) != 1:
        return None
    started = start_time(inits[0])
    return None if started is None else (inits[0], started)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(c) for c in handle.read().split()]
    except OSError:
        return []


def _pid_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None
