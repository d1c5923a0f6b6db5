"""A progress line on stderr for long copies, extractions and downloads (terminals only).

The work itself runs in a child process (cp, tar, debootstrap), so progress is measured
from the outside by a thread: for a copy, the bytes our child has written (``wchar`` in
``/proc/PID/io``: exact, and blind to other writers on the filesystem); for a download,
which spawns a tree of short-lived processes, the growth of the target filesystem
(statvfs). On anything but a terminal this is silent.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

INTERVAL = 0.25
BAR_WIDTH = 28


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def _children() -> list[int]:
    """Our direct children (the cp or tar that run() started), from every thread."""
    pids: list[int] = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as handle:
                pids += [int(pid) for pid in handle.read().split()]
        except OSError:
            continue
    return pids


def _children_written() -> int:
    total = 0
    for pid in _children():
        try:
            with open(f"/proc/{pid}/io") as handle:
                for line in handle:
                    if line.startswith("wchar:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns


def format_line(label: str, done: int, total: int | None, elapsed: float) -> str:
    """One redrawn progress line: a bar when the total is known, a counter otherwise."""
    if total:
        fraction = min(max(done / total, 0.0), 1.0)
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"{label} [{bar}] {fraction:4.0%} {_human(done)}/{_human(total)}"
    return f"{label} {_human(done)} ({elapsed:.0f} s)"


def wanted(stream: object = None) -> bool:
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextlib.contextmanager
def progress(
    label: str, target: Path, total: int | None = None, *, by_child: bool = True
) -> Iterator[None]:
    """Show *label* and the bytes written so far while the body runs a child process.

    ``by_child`` counts what the direct child writes; otherwise the growth of *target*'s
    filesystem is shown (for a tool that works through grandchildren).
    """
    if not wanted():
        yield
        return
    stop = threading.Event()
    watch = target if target.exists() else target.parent
    start_used, started = _used(watch), time.monotonic()

    def written() -> int:
        return _children_written() if by_child else max(_used(watch) - start_used, 0)

    def draw() -> None:
        while not stop.wait(INTERVAL):
            done = written()
            line = format_line(label, done, total, time.monotonic() - started)
            sys.stderr.write("\r\x1b[K" + line)
            sys.stderr.flush()

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def callback(label: str) -> Callable[[int, int | None, str], None] | None:
    """A progress callback ``(done, total, what)`` redrawing one line on a terminal (for
    work that reports its own progress, such as a disk image's conversion or rsync's);
    None elsewhere, so the work does not even parse its tool's progress."""
    if not wanted():
        return None
    started = time.monotonic()

    def report(done: int, total: int | None, what: str) -> None:
        line = format_line(what or label, done, total, time.monotonic() - started)
        sys.stderr.write("\r\x1b[K" + line)
        if total is not None and done >= total:
            sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()

    return report
