"""Start, stop and recover the lxcfs daemon that serves a home directory.

Where systemd is PID 1 and the home is the packaged default, the distribution's unit runs
lxcfs. Elsewhere lxcfs is spawned detached with a pid file under a run directory the
caller owns, and only a process recorded there (and still an lxcfs for that home) is ever
signalled.
"""

from __future__ import annotations

import enum
import os
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxcfs_integration import mountinfo, process
from lxcfs_integration.errors import LxcfsError, LxcfsNotInstalled, LxcfsStartError
from lxcfs_integration.health import HomeStatus, home_status
from lxcfs_integration.views import DEFAULT_HOME

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
UNIT = "lxcfs.service"
_POLL = 0.02


class Manager(enum.StrEnum):
    SPAWNED = "spawned"  # our detached process, known by its pid file
    SYSTEMD = "systemd"  # the distribution's unit
    FOREIGN = "foreign"  # someone else's lxcfs: used, never stopped

    def may_stop(self) -> bool:
        return self is not Manager.FOREIGN


@dataclass(frozen=True)
class LxcfsProcess:
    home: Path
    manager: Manager
    pid: int | None = None
    pidfile: Path | None = None


def systemd_booted() -> bool:
    """sd_booted(3)'s test: systemd as PID 1 creates this directory early at boot."""
    return os.path.isdir("/run/systemd/system")


def want_systemd(home: Path) -> bool:
    # The unit's ExecStart serves /var/lib/lxcfs only; any other home needs our own process.
    return systemd_booted() and Path(os.path.realpath(home)) == DEFAULT_HOME


def find_binary() -> str:
    found = shutil.which("lxcfs", path=process.SYSTEM_PATH)
    if found is None:
        raise LxcfsNotInstalled(
            "lxcfs is not installed", hint="install the lxcfs package (apt-get install lxcfs)"
        )
    return found


def pidfile_in(run_dir: Path) -> Path:
    return run_dir / "lxcfs.pid"


def _alive(pid: int) -> bool:
    """True while *pid* runs; a zombie (not yet reaped by its parent) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def is_lxcfs_for(pid: int, home: Path) -> bool:
    """Is *pid* an lxcfs serving *home*? Guards every signal against a recycled pid."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [os.fsdecode(a) for a in argv if a]
    if not args or os.path.basename(args[0]) != "lxcfs":
        return False
    want = os.path.realpath(home)
    return any(os.path.realpath(a) == want for a in args[1:] if a.startswith("/"))


def read_pidfile(pidfile: Path, home: Path) -> int | None:
    """The pid recorded in *pidfile* if that process is still an lxcfs for *home*."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) and is_lxcfs_for(pid, home) else None


def wait_healthy(home: Path, timeout: float = START_TIMEOUT, *, pid: int | None = None) -> None:
    """Wait until *home* serves reads; fail early if the process *pid* died meanwhile."""
    deadline = time.monotonic() + timeout
    status = home_status(home)
    while not status.state.serving():
        if pid is not None and not _alive(pid):
            raise LxcfsStartError(f"lxcfs (pid {pid}) exited before serving {home}")
        if time.monotonic() > deadline:
            raise LxcfsStartError(
                f"lxcfs did not serve {home} within {timeout:g} s ({status.state}"
                f"{': ' + status.error if status.error else ''})"
            )
        time.sleep(_POLL)
        status = home_status(home)


def unmount_dead(home: Path) -> int:
    """Lazily detach every dead lxcfs mount stacked on *home*; return how many went.

    MNT_DETACH because a dead FUSE mount can still be busy (containers bind its files) and
    a plain umount would fail with EBUSY.
    """
    from lxcfs_integration import syscalls  # ctypes: ~2 ms that a healthy home never needs

    real = os.path.realpath(home)
    count = 0
    while mountinfo.lxcfs_at(mountinfo.read(), real):
        syscalls.umount2(real, syscalls.MNT_DETACH)
        count += 1
    return count


def _log_tail(log: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(
    home: Path,
    run_dir: Path,
    *,
    options: Sequence[str] = (),
    timeout: float = START_TIMEOUT,
    use_systemd: bool | None = None,
) -> LxcfsProcess:
    """Start lxcfs for *home* and wait until it serves; a dead mount there is detached first.

    *options* are extra lxcfs flags (``-l`` for loadavg, ``--enable-cfs``, ...).
    """
    home = Path(os.path.realpath(home))
    state = home_status(home).state
    if state.serving():
        raise LxcfsError(f"lxcfs already serves {home}")
    if state.needs_unmount():
        unmount_dead(home)
    if use_systemd is None:
        use_systemd = want_systemd(home)
    if use_systemd:
        return _start_unit(home, timeout)
    binary = find_binary()
    run_dir.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    pidfile = pidfile_in(run_dir)
    log = run_dir / "lxcfs.log"
    pid = spawn_lxcfs([binary, "-p", os.fspath(pidfile), *options, os.fspath(home)], log)
    try:
        wait_healthy(home, timeout, pid=pid)
    except LxcfsStartError as exc:
        if _alive(pid):
            _signal_and_wait(pid, STOP_TIMEOUT)
        raise LxcfsStartError(exc.message, hint=f"lxcfs log {log}: {_log_tail(log)}") from None
    return LxcfsProcess(home, Manager.SPAWNED, pid, pidfile)


def spawn_lxcfs(argv: Sequence[str], log: Path) -> int:
    try:
        return process.spawn_detached(argv, log)
    except OSError as exc:
        raise LxcfsStartError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc


def _start_unit(home: Path, timeout: float) -> LxcfsProcess:
    proc = process.run_tool(["systemctl", "start", UNIT])
    if proc.returncode != 0:
        raise LxcfsStartError(
            f"systemctl start {UNIT} failed: {proc.stderr.strip()}",
            hint=f"see journalctl -u {UNIT}",
        )
    wait_healthy(home, timeout)
    shown = process.run_tool(["systemctl", "show", "--property=MainPID", "--value", UNIT])
    pid = int(shown.stdout.strip() or 0) or None
    return LxcfsProcess(home, Manager.SYSTEMD, pid)


def _signal_and_wait(pid: int, timeout: float) -> None:
    """SIGTERM (lxcfs then unmounts its home itself), SIGKILL after *timeout*."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while _alive(pid):
            if time.monotonic() > deadline:
                break
            time.sleep(_POLL)
        else:
            return
    raise LxcfsError(f"lxcfs (pid {pid}) did not exit after SIGKILL")


def stop(lxcfs: LxcfsProcess, *, timeout: float = STOP_TIMEOUT) -> None:
    """Stop an lxcfs this package started, and leave no mount (dead or alive) at its home."""
    if not lxcfs.manager.may_stop():
        raise LxcfsError(f"lxcfs at {lxcfs.home} was not started by richc; not stopping it")
    if lxcfs.manager is Manager.SYSTEMD:
        proc = process.run_tool(["systemctl", "stop", UNIT])
        if proc.returncode != 0:
            raise LxcfsError(f"systemctl stop {UNIT} failed: {proc.stderr.strip()}")
    elif lxcfs.pid is not None and _alive(lxcfs.pid) and is_lxcfs_for(lxcfs.pid, lxcfs.home):
        _signal_and_wait(lxcfs.pid, timeout)
    unmount_dead(lxcfs.home)
    if lxcfs.pidfile is not None:
        lxcfs.pidfile.unlink(missing_ok=True)


def current(home: Path, run_dir: Path | None = None) -> LxcfsProcess | None:
    """The lxcfs serving *home* now, and who manages it; None when nothing serves it."""
    home = Path(os.path.realpath(home))
    if not home_status(home).state.serving():
        return None
    if run_dir is not None:
        pidfile = pidfile_in(run_dir)
        pid = read_pidfile(pidfile, home)
        if pid is not None:
            return LxcfsProcess(home, Manager.SPAWNED, pid, pidfile)
    if want_systemd(home):
        return LxcfsProcess(home, Manager.SYSTEMD)
    return LxcfsProcess(home, Manager.FOREIGN)


def ensure(
    home: Path,
    run_dir: Path,
    *,
    options: Sequence[str] = (),
    timeout: float = START_TIMEOUT,
) -> tuple[LxcfsProcess, bool]:
    """Make *home* serve: reuse a healthy lxcfs, else (after detaching a dead mount) start one.

    Returns the process and whether it was started now. This is also the recovery of a dead
    home; the containers' views need :func:`lxcfs_integration.remount.remount_views` after.
    """
    running = current(home, run_dir)
    if running is not None:
        return running, False
    stale = read_pidfile(pidfile_in(run_dir), home)
    if stale is not None:
        # Alive but not serving (stopped, or wedged): it holds the pid file lock, so a new
        # lxcfs could not start beside it.
        _signal_and_wait(stale, STOP_TIMEOUT)
    return start(home, run_dir, options=options, timeout=timeout), True


def status(home: Path) -> HomeStatus:
    return home_status(home)
