"""The poststop claim: ``RUN/containers/NAME/hooks-poststop.json``.

Whoever creates the file first runs this run's poststop hooks: the runtime's callback (LXC's
``lxc.hook.post-stop``), or ``richc stop``/``rm``. While they run it says
``{"status": "running", "pid", "start_time"}``; afterwards ``{"status": "done", "results"}``.

``richc stop`` claims before it sends the halt signal, so LXC's monitor, which waits for
the callback before it reports the container stopped, waits for a process that reads this
file and exits. That process imports this module before it knows whether it has anything
to do, so it needs only ``os``, ``json``, ``contextlib`` and :mod:`richc.procs`: no
pathlib, typing or dataclasses, which would double the callback's start-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys

from richc.procs import is_same_process, start_time

CLAIM_FILE = "hooks-poststop.json"
# The runtime's callback; it reads the records take() and stages.poststop_once() write,
# so their shape (json.dumps of these keys, in this order) is part of its contract.
CALLBACK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "poststop.sh")

Record = dict[str, object]


def path(run_dir: str | os.PathLike[str]) -> str:
    return os.path.join(run_dir, CLAIM_FILE)


def take(run_dir: str | os.PathLike[str]) -> bool:
    """Claim this run's poststop hooks for the calling process; False if someone has."""
    os.makedirs(run_dir, exist_ok=True)
    try:
        fd = os.open(path(run_dir), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    pid = os.getpid()
    with os.fdopen(fd, "w") as handle:
        json.dump({"status": "running", "pid": pid, "start_time": start_time(pid)}, handle)
    return True


def read(run_dir: str | os.PathLike[str]) -> Record | None:
    try:
        with open(path(run_dir)) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def in_progress(record: Record | None) -> bool:
    """A claim whose runner is still at work (not done, and that very process alive)."""
    if record is None or record.get("status") == "done":
        return False
    pid = record.get("pid")
    recorded = record.get("start_time")
    return (
        isinstance(pid, int)
        and pid > 0
        and is_same_process(pid, recorded if isinstance(recorded, int) else None)
    )


def orphaned(record: Record | None) -> bool:
    """A claim whose runner died before it finished (a `richc stop` killed mid-way)."""
    return record is not None and record.get("status") != "done" and not in_progress(record)


def release_orphan(run_dir: str | os.PathLike[str]) -> None:
    """Drop a dead runner's claim so that the caller may take it.

    Only the runtime's callback calls this, and a runtime runs one callback per stop, so
    two processes never race to take over the same orphan.
    """
    if orphaned(read(run_dir)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path(run_dir))


def callback_argv(root: str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> list[str]:
    """The command a runtime runs when the container stops for any reason.

    The runtime appends the container's name (LXC appends ``NAME lxc post-stop``).
    ``poststop.sh`` exits at once when a live `richc stop` holds the claim (LXC's stop waits
    for this command; a shell starts in a twentieth of python's time); otherwise it runs
    ``python -I -m richc.hookrun``, ``-I`` keeping the caller's PYTHON* variables out of
    richc's own interpreter.
    """
    return ["/bin/sh", CALLBACK_SCRIPT, os.fspath(root), path(run_dir), sys.executable]


def callback_command(root: str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> str:
    """:func:`callback_argv` as one shell-quoted line (LXC hook values are shell commands)."""
    return shlex.join(callback_argv(root, run_dir))
