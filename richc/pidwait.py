"""Waiting for a process that is not our child: pidfds where the kernel has them (5.3+),
polling /proc elsewhere. The one home of pidfd_open in richc."""

from __future__ import annotations

import errno
import os
import select
import time

POLL_INTERVAL = 0.05  # seconds between /proc checks where pidfd_open is missing


def exited(pid: int) -> bool:
    """True once *pid* is gone or a zombie (a zombie has exited; only its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except OSError:
        return True
    return data[data.rindex(")") + 2 :].split(" ", 1)[0] in ("Z", "X")


def open_pidfd(pid: int) -> int | None:
    """A pidfd for *pid*, -1 where the kernel has none (before 5.3), None if it is gone.

    A pidfd names the process itself, so a reused pid cannot fool a wait on it.
    """
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        return -1


def wait_exit(pid: int, timeout: float, *, poll: float = POLL_INTERVAL) -> bool:
    """Wait up to *timeout* seconds for *pid* to exit; True if it did."""
    pidfd = open_pidfd(pid)
    if pidfd is None:
        return True
    try:
        deadline = time.monotonic() + timeout
        while not exited(pid):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if pidfd >= 0:
                select.select([pidfd], [], [], left)
            else:
                time.sleep(min(poll, left))
        return True
    finally:
        if pidfd >= 0:
            os.close(pidfd)
