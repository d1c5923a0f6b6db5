"""Wait until a container's init says (or shows) it has finished booting.

- systemd: ``systemctl is-system-running --wait`` inside the container, entered with
  nsenter(1) so it works the same whatever the runtime. "degraded" counts as booted.
- busybox init: its inittab's boot actions (``sysinit``, ``wait``) have run and none
  is still running. Seeing one running, or seeing a later action (``respawn``,
  ``once``) started, proves boot got that far.
- SysV init: the runlevel is in utmp and that level's ``wait`` entries (``rc N``) ran
  and finished, or a later entry of the level (its getty) is running.
- other inits (dumb-init, a plain command): running is ready.

Everything is read from the host through ``/proc/PID``, with no exec into the container,
except for systemd whose own answer is the only reliable one.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from richc import config as cfg
from richc.errors import CommandFailed
from richc.run import run

POLL = 0.02  # seconds between looks at /proc
BOOT_ACTIONS = ("sysinit", "wait", "bootwait")
LATER_ACTIONS = ("respawn", "once", "askfirst", "boot")
# If no boot action was ever seen running, accept the boot after this long without one.
QUIET_SECONDS = 0.5


@dataclass(frozen=True)
class Readiness:
    ready: bool
    how: str
    seconds: float


def wait_ready(init: cfg.Init | str, pid: int, timeout: float) -> Readiness:
    started = time.monotonic()
    kind = cfg.Init(init) if init in cfg.Init.__members__.values() else None
    if kind is cfg.Init.systemd:
        ready, how = _systemd(pid, timeout)
    elif kind in (cfg.Init.busybox, cfg.Init.sysvinit):
        ready, how = _inittab(pid, timeout, sysv=kind is cfg.Init.sysvinit)
    else:
        ready, how = _alive(pid), "init is running (it has no readiness signal)"
    return Readiness(ready, how, time.monotonic() - started)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


# nsenter's flag per namespace file; only those the kernel has are entered (cgroup: 4.6).
NSENTER_FLAGS = {"mnt": "-m", "uts": "-u", "ipc": "-i", "net": "-n", "pid": "-p", "cgroup": "-C"}


def _own_userns(pid: int) -> bool:
    """Whether *pid* lives in a user namespace other than richc's."""
    try:
        return os.stat(f"/proc/{pid}/ns/user").st_ino != os.stat("/proc/self/ns/user").st_ino
    except OSError:
        return False


def _systemd(pid: int, timeout: float) -> tuple[bool, str]:
    flags = [f for ns, f in NSENTER_FLAGS.items() if os.path.exists(f"/proc/{pid}/ns/{ns}")]
    if _own_userns(pid):
        # An unprivileged container: systemd denies a query from host root, who is no one
        # in its user namespace, so systemctl must enter that namespace too.
        flags.insert(0, "-U")
    argv = ["nsenter", "-t", str(pid), *flags, "-r", "-w"]
    argv += ["systemctl", "is-system-running", "--wait"]
    # systemctl talks to systemd over /run/systemd/private, which a just-started systemd
    # has not created yet ("Failed to connect to bus"): wait for it from the host side.
    private = Path(f"/proc/{pid}/root/run/systemd/private")
    deadline = time.monotonic() + timeout
    state = "not answering"
    while time.monotonic() < deadline:
        if not _alive(pid):
            return False, "systemd exited while booting"
        if not private.exists():
            time.sleep(POLL)
            continue
        try:
            proc = run(argv, check=False, timeout=max(deadline - time.monotonic(), 0.1))
        except CommandFailed as exc:
            return False, f"systemctl is-system-running: {exc.message}"
        state = proc.stdout.strip() or proc.stderr.strip()
        # --wait returns once startup is over; "degraded" (a unit failed) is still booted.
        if state in ("running", "degraded"):
            return True, f"systemd is {state}"
        if state in ("stopping", "offline", "maintenance"):
            return False, f"systemd is {state}"
        time.sleep(POLL)  # the bus went away and came back (daemon-reexec): ask again
    return False, f"systemd is {state} after {timeout:g} s"


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out += [int(c) for c in handle.read().split()]
        except OSError:
            continue
    return out


def _descendant_cmdlines(pid: int) -> list[str]:
    seen: list[str] = []
    stack = _children(pid)
    while stack:
        child = stack.pop()
        try:
            with open(f"/proc/{child}/cmdline", "rb") as handle:
                seen.append(handle.read().replace(b"\0", b" ").decode(errors="replace").strip())
        except OSError:
            continue
        stack += _children(child)
    return seen


@dataclass(frozen=True)
class InittabEntry:
    levels: str  # the runlevels field: "2345", or "" for every level
    action: str
    process: str


def inittab_entries(text: str) -> list[InittabEntry]:
    """The entries of an inittab (busybox's ``id::action:process`` too), in file order."""
    out: list[InittabEntry] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":", 3)
        if len(fields) != 4:
            continue
        out.append(InittabEntry(fields[1], fields[2], fields[3].strip().lstrip("-")))
    return out


def inittab_actions(text: str) -> dict[str, list[str]]:
    """``action -> [process, ...]`` from an inittab."""
    out: dict[str, list[str]] = {}
    for entry in inittab_entries(text):
        out.setdefault(entry.action, []).append(entry.process)
    return out


def _matches(cmdline: str, process: str) -> bool:
    words = process.split()
    return bool(words) and words[0] in cmdline


def _any_running(running: list[str], processes: list[str]) -> bool:
    return any(_matches(c, p) for c in running for p in processes)


def _inittab(pid: int, timeout: float, *, sysv: bool) -> tuple[bool, str]:
    try:
        text = Path(f"/proc/{pid}/root/etc/inittab").read_text(errors="replace")
    except OSError:
        return _alive(pid), "init is running (no /etc/inittab to follow)"
    entries = inittab_entries(text)
    boot = [e.process for e in entries if e.action in BOOT_ACTIONS]
    later = [e.process for e in entries if e.action in LATER_ACTIONS]
    deadline = time.monotonic() + timeout
    first = time.monotonic()
    progressed = False
    level_work = _LevelWork(entries) if sysv else None
    while time.monotonic() < deadline:
        if not _alive(pid):
            return False, "init exited while booting"
        running = _descendant_cmdlines(pid)
        booting = _any_running(running, boot)
        progressed = progressed or booting or _any_running(running, later)
        quiet = progressed or time.monotonic() - first > QUIET_SECONDS
        if level_work is not None:
            if level_work.done(_runlevel(pid), running, booting=booting):
                return True, f"runlevel {level_work.level} reached and its wait actions finished"
        elif not booting and quiet:
            return True, "boot actions of /etc/inittab finished"
        time.sleep(POLL)
    return False, f"boot actions of /etc/inittab still running after {timeout:g} s"


# After SysV init records a runlevel in utmp and before it spawns that level's entries
# there is a moment with nothing running; accept a level with no visible work after this.
LEVEL_QUIET_SECONDS = 2.0


class _LevelWork:
    """Whether SysV init has finished the ``wait`` entries of the runlevel it entered.

    init writes the runlevel to utmp first and spawns ``/etc/init.d/rc N`` after, so the
    runlevel alone is not enough: the level's wait entries must have been seen running
    and gone, or one of its later entries (a getty, which init starts only once the wait
    entries above it are done) must be running.
    """

    def __init__(self, entries: list[InittabEntry]) -> None:
        self.entries = entries
        self.level: str | None = None
        self.since = 0.0
        self.saw_wait = False

    def done(self, level: str | None, running: list[str], *, booting: bool) -> bool:
        if level is None:
            return False
        if level != self.level:
            self.level, self.since, self.saw_wait = level, time.monotonic(), False
        if booting:
            # Also covers a runlevel left in utmp by the previous boot while rcS runs.
            self.since = time.monotonic()
        mine = [e for e in self.entries if not e.levels or level in e.levels]
        waits = [e.process for e in mine if e.action == "wait"]
        later = [e.process for e in mine if e.action in ("respawn", "once")]
        if any(_is(c, p) for c in running for p in waits):
            self.saw_wait = True
            return False
        if booting:
            return False
        if self.saw_wait or any(_is(c, p) for c in running for p in later):
            return True
        return time.monotonic() - self.since > LEVEL_QUIET_SECONDS


def _is(cmdline: str, process: str) -> bool:
    """Whether a command line runs exactly this inittab process: ``rc 2``, not ``rcS``.

    Scripts show their interpreter first (``/bin/sh /etc/init.d/rc 2``).
    """
    return cmdline == process or cmdline.endswith(" " + process)


# struct utmp on Linux (x86-64 and most others): ut_type (short) at 0, ut_pid (int) at 4.
UTMP_SIZE = 384
RUN_LVL = 1


def _runlevel(pid: int) -> str | None:
    """The runlevel SysV init recorded in the container's utmp, if it reached one yet."""
    for relpath in ("run/utmp", "var/run/utmp"):
        try:
            data = Path(f"/proc/{pid}/root/{relpath}").read_bytes()
        except OSError:
            continue
        for offset in range(0, len(data) - UTMP_SIZE + 1, UTMP_SIZE):
            ut_type, ut_pid = struct.unpack_from("hxxi", data, offset)
            if ut_type == RUN_LVL:
                return chr(ut_pid & 0xFF)
    return None
