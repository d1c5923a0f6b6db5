"""The runc runtime's console keeper: one small process per running container.

LXC's monitor is the parent of the container's init, holds the master side of its console
pty, writes what the container prints there to ``console.log``, and runs the post-stop
hook when the init exits. runc has no monitor once ``runc start`` returns, so the runc
runtime starts this keeper (``python -m richc.runtime.console_keeper``) to play that part:

- it makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``, Linux 3.4) and runs
  ``runc create`` itself, so the init becomes its child when ``runc create`` exits and it
  reaps the init; otherwise the host's PID 1 would have to, and not every PID 1 does (a
  zombie init looks alive to richc);
- it reports ``ok PID`` or ``failed STATUS`` on a status pipe to the richc that started it;
- it owns the pty master and copies the console to the log (kept under
  :data:`LOG_LIMIT`, one rotated file, like ``lxc.console.size``). Without a holder of the
  master, a getty on ``/dev/console`` would respawn forever and the init's output would
  block once the pty buffer filled;
- when the init exits, whoever stopped it, it runs richc's poststop callback (the hooks,
  once per run) and then ``runc delete``, so the container's cgroups and runc state go.

Only the standard library and :mod:`richc.run` are imported: the keeper lives as long as
the container, so it should cost little memory.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import os
import select
import shlex
import sys
from pathlib import Path

from richc.pidwait import exited, open_pidfd

LOG_LIMIT = 1 << 20  # bytes of console.log before it is rotated to console.log.1
POLL_INTERVAL = 0.5  # seconds between /proc checks where pidfd_open is missing (< 5.3)
CHUNK = 65536
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>, Linux 3.4


def become_subreaper() -> bool:
    """Adopt orphaned descendants (the init, once ``runc create`` exits); False if the
    kernel is older than 3.4."""
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0


def reap_children() -> None:
    """Collect every exited child (the init, runc's intermediate processes)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class ConsoleLog:
    """Append-only console log that rotates at :data:`LOG_LIMIT` bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)

    def write(self, data: bytes) -> None:
        if self.size + len(data) > LOG_LIMIT:
            os.close(self.fd)
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self.fd = self._open()
            self.size = 0
        os.write(self.fd, data)
        self.size += len(data)


def _drain(master: int, log: ConsoleLog) -> bool:
    """Copy what the pty holds now; False when the master reports hang-up (EIO)."""
    while True:
        try:
            data = os.read(master, CHUNK)
        except BlockingIOError:
            return True
        except OSError as exc:
            if exc.errno == errno.EIO:  # no slave open any more
                return False
            raise
        if not data:
            return False
        log.write(data)


def keep(master: int, pid: int, log: ConsoleLog) -> None:
    """Copy the console until the init *pid* exits, then reap it."""
    os.set_blocking(master, False)
    pidfd = open_pidfd(pid)
    if pidfd is None:  # it exited already: drain and reap below
        pidfd = -1
    reading = True
    while True:
        if pidfd < 0 and exited(pid):
            break
        watch = ([master] if reading else []) + ([pidfd] if pidfd >= 0 else [])
        ready, _, _ = select.select(watch, [], [], None if pidfd >= 0 else POLL_INTERVAL)
        if master in ready:
            reading = _drain(master, log)
        if pidfd in ready:
            break
    _drain(master, log)
    reap_children()


def _report(status_fd: int, message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(status_fd, message.encode() + b"\n")
    with contextlib.suppress(OSError):
        os.close(status_fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="richc.runtime.console_keeper")
    parser.add_argument("--master", type=int, required=True, help="pty master descriptor")
    parser.add_argument(
        "--slave",
        type=int,
        required=True,
        help="the pty slave: the init's stdio, and held open so the master never sees a "
        "hang-up between two gettys",
    )
    parser.add_argument("--status-fd", type=int, required=True, help="where to say ok PID")
    parser.add_argument("--pid-file", type=Path, required=True, help="runc create's pid file")
    parser.add_argument("--log", type=Path, required=True, help="the console log")
    parser.add_argument("--poststop", help="richc's poststop callback (shell-quoted)")
    parser.add_argument("--delete", help="the `runc ... delete ID` command (shell-quoted)")
    # Everything after "--" is the `runc ... create` command.
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        parser.error("the runc create command must follow --")
    create = argv[argv.index("--") + 1 :]
    args = parser.parse_args(argv[: argv.index("--")])

    from richc.run import run

    become_subreaper()
    # The init inherits runc's stdio ("pass-through", terminal false): the pty slave.
    proc = run(create, check=False, stdin=args.slave, stdout=args.slave, stderr=args.slave)
    if proc.returncode != 0:
        _report(args.status_fd, f"failed {proc.returncode}")
        reap_children()
        return 1
    pid = int(args.pid_file.read_text().strip())
    _report(args.status_fd, f"ok {pid}")
    log = ConsoleLog(args.log)
    try:
        keep(args.master, pid, log)
    finally:
        if args.poststop:
            # However the init went (richc stop, exited by itself, killed from outside):
            # the poststop hooks run once (richc.hookrun), as LXC's post-stop hook does.
            run(shlex.split(args.poststop), check=False, capture=False)
        if args.delete:
            # The init is gone: remove runc's record of it and its cgroups. richc's own
            # stop may be doing the same; whichever is second finds nothing to delete.
            run(shlex.split(args.delete), check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
