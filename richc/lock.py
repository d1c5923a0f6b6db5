"""Per-container locks, so two richc processes acting on one container serialise."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from richc.errors import Busy


@contextmanager
def locked(path: Path, what: str, *, wait: float = 30.0) -> Iterator[None]:
    """Hold an exclusive flock on *path* for the block, waiting up to *wait* seconds.

    flock (not a lock file's existence) is used because the kernel releases it when the
    holder dies, so a richc killed mid-operation never leaves a stale lock behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise Busy(
                        f"{what} is locked by another richc process (pid {holder})",
                        hint="wait for it to finish, or check it with `ps -p PID`",
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
