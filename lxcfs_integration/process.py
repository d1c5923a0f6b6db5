"""The package's only child processes: lxcfs itself (detached) and systemctl.

lxcfs 5.0 stays in the foreground whatever its flags say, so it is detached here by a
double fork: it is re-parented to init (or the nearest subreaper) and never becomes a
zombie of a long-lived caller such as a test run or ``richc lxcfs watch``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _env() -> dict[str, str]:
    return {"PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8"}


def run_tool(argv: Sequence[str], *, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a short tool (systemctl) to completion; the caller checks the return code."""
    return subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
        check=False,
    )


def spawn_detached(argv: Sequence[str], log: Path) -> int:
    """Start *argv* in its own session, not as our child; return its pid.

    stdout and stderr go to *log*. An exec failure comes back as an OSError through a
    close-on-exec pipe, so "not found" is reported instead of a silent early death.
    """
    env = _env()
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    middle = os.fork()
    if middle == 0:  # pragma: no cover - runs in the forked child
        try:
            os.setsid()
            grandchild = os.fork()
            if grandchild == 0:
                try:
                    devnull = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(devnull, 0)
                    os.dup2(log_fd, 1)
                    os.dup2(log_fd, 2)
                    os.chdir("/")
                    os.execvpe(argv[0], list(argv), env)
                except OSError as exc:
                    os.write(status_w, str(exc.errno).encode())
                os._exit(127)
            os.write(pid_w, str(grandchild).encode())
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(status_w)
    os.close(pid_w)
    os.close(log_fd)
    try:
        _, wait_status = os.waitpid(middle, 0)
        data = os.read(pid_r, 32)
        if os.waitstatus_to_exitcode(wait_status) != 0 or not data:
            raise OSError(f"could not fork to start {argv[0]}")
        err = os.read(status_r, 32)  # EOF at exec: the write end was close-on-exec
        if err:
            code = int(err)
            raise OSError(code, os.strerror(code), argv[0])
        return int(data)
    finally:
        os.close(status_r)
        os.close(pid_r)
