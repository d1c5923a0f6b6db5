"""Process facts read from /proc: is a recorded init still the same process, or did the
container reboot into a new one?"""

from __future__ import annotations

import os


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


def parent_record(pid: int) -> dict[str, int]:
    """What to keep about an init's parent (LXC's monitor) to follow a reboot later."""
    ppid = parent(pid)
    started = start_time(ppid) if ppid else None
    if not ppid or ppid == 1 or started is None:
        return {}
    return {"parent_pid": ppid, "parent_start_time": started}


def recorded_init(extra: dict[str, object]) -> tuple[int, int | None] | None:
    """The container's live init as ``(pid, start_time)``, or None if it is not running.

    That is the init recorded at start, or, after a reboot from inside the container, the
    new init its runtime started: LXC's monitor stays and forks a new init into a new pid
    namespace, so the monitor's only child in another pid namespace is the container's
    init now. No runtime call: this is cheap enough for every row of ``richc list``.
    """
    pid = extra.get("pid")
    if not isinstance(pid, int):
        return None
    recorded = _int_or_none(extra.get("pid_start_time"))
    if is_same_process(pid, recorded):
        return pid, recorded
    monitor = extra.get("parent_pid")
    monitor_start = _int_or_none(extra.get("parent_start_time"))
    if not isinstance(monitor, int) or not is_same_process(monitor, monitor_start):
        return None
    inits = [c for c in _children(monitor) if _pid_ns(c) not in (None, _pid_ns(monitor))]
    if len(inits) != 1:
        return None
    started = start_time(inits[0])
    return None if started is None else (inits[0], started)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


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
