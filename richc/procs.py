"""Process facts read from /proc: is a recorded init still the same process?"""

from __future__ import annotations


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(")") + 2 :].split()
    return int(fields[19])


def is_same_process(pid: int | None, recorded_start: int | None) -> bool:
    """True if *pid* is alive and is the process that started at *recorded_start*.

    Comparing start times guards against the pid having been reused after the init died.
    """
    if not pid:
        return False
    current = start_time(pid)
    return current is not None and (recorded_start is None or current == recorded_start)
