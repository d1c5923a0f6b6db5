"""`richc start --foreground`: start a container and stay attached to its init's lifetime.

The supervisor is what a ``richc@NAME.service`` unit runs, and it works without systemd too:

- it starts the container (or adopts it if it already runs), then tells a waiting service
  manager ``READY=1`` (``Type=notify``), after the init is up and the poststart hooks ran;
- SIGTERM, SIGINT or SIGHUP make it stop the container cleanly (``richc stop``, with the
  stop hooks) and exit :data:`EXIT_STOPPED`;
- an explicit ``richc stop`` from elsewhere marks the stop in the container's state before
  the init goes, so the supervisor sees a requested stop and exits :data:`EXIT_STOPPED`;
  ``richc restart`` marks its stop as a restart, and the supervisor follows the new init;
- an init that exits otherwise (killed, crashed, powered off from inside) is "init died":
  :data:`EXIT_INIT_DIED`, after the container's ``restart:`` policy had its turn. Under a
  service manager (``$NOTIFY_SOCKET``) restarting is systemd's job (``Restart=`` in the
  unit); without one the supervisor restarts by the policy itself, with an exponential
  back-off and, for ``on-failure``, a limit on restarts in a row.

The init is not the supervisor's child (LXC's monitor is its parent), so its exit status is
out of reach: the supervisor waits on a pidfd where the kernel has them (5.3+) and polls
``/proc`` otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

from richc import config as cfg
from richc import log as richc_log
from richc.context import Context
from richc.errors import Conflict, RichcError
from richc.pidwait import exited, open_pidfd
from richc.procs import is_same_process
from richc.sdnotify import notify, notify_socket

log = logging.getLogger("richc.supervise")

EXIT_STOPPED = 0  # stopped by request: `richc stop`, or SIGTERM/SIGINT/SIGHUP to the supervisor
# 7 is LSB's "program is not running": systemd shows it as "status=7/NOTRUNNING".
EXIT_INIT_DIED = 7  # the init exited without a request, and the restart policy is done

MAX_BACKOFF = 30.0  # seconds: the longest wait between two restarts
STABLE_AFTER = 60.0  # seconds up after which a death counts as the first in a row again
POLL_INTERVAL = 0.5  # seconds between /proc checks where there are no pidfds
REBOOT_WAIT = 5.0  # seconds to wait for the init an in-container reboot brings up
RESTART_WAIT = 300  # seconds to wait for `richc restart` to bring the container back
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@dataclass(frozen=True)
class RestartRules:
    """How the no-systemd supervisor restarts: back-off doubling from *delay*, and a limit."""

    max_restarts: int = 5  # restarts in a row for `on-failure`; `always` has no limit
    delay: float = 1.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before restart number *attempt* (1, 2, ...)."""
        return float(min(self.delay * 2 ** (attempt - 1), MAX_BACKOFF))

    def allows(self, policy: cfg.RestartPolicy, attempt: int) -> bool:
        if policy is cfg.RestartPolicy.no:
            return False
        if policy is cfg.RestartPolicy.always:
            return True
        return attempt <= self.max_restarts


class _Signals:
    """Turn the stop signals into a readable fd, so one poll() waits for them and the init."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous: dict[int, object] = {}
        self._previous_wakeup = -1

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signum

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Signals]:
        # The C-level handler writes the signal number to the wakeup fd at once, even while
        # the main thread sits in poll(); the Python handler records which one it was.
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for number, handler in self._previous.items():
                signal.signal(number, handler)  # type: ignore[arg-type]
            signal.set_wakeup_fd(self._previous_wakeup)
            os.close(self.read_fd)
            os.close(self._write_fd)

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.read_fd, 64):
                pass

    def sleep(self, seconds: float) -> bool:
        """Sleep, or wake early on a stop signal; True if a signal came."""
        deadline = time.monotonic() + seconds
        while self.received is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            select.select([self.read_fd], [], [], left)
            self.drain()
        return self.received is not None


def _tell_manager(**values: str | int) -> None:
    """sd_notify, but a manager that cannot be reached must not end the supervision."""
    try:
        notify(**values)
    except OSError as exc:
        log.warning("cannot notify the service manager at $NOTIFY_SOCKET: %s", exc)


def pidfds_usable() -> bool:
    """Ask the probe whether this kernel has pidfd_open (5.3+)."""
    try:
        from richc.probe import host_features

        return bool(host_features().has_pidfd)
    except Exception as exc:  # the probe failing must not stop supervision: poll instead
        log.debug("host probe failed (%s); watching the init by polling /proc", exc)
        return False


def init_alive(pid: int, start_time: int | None) -> bool:
    """True while *pid* is the recorded init and has not exited (a zombie has exited)."""
    return is_same_process(pid, start_time) and not exited(pid)


def wait_for_exit(pid: int, start_time: int | None, signals: _Signals, use_pidfd: bool) -> bool:
    """Wait until the init (*pid*, started at *start_time*) exits or a stop signal comes.

    Return True if the init exited, False if a signal came first.
    """
    pidfd = -1
    if use_pidfd:
        found = open_pidfd(pid)
        if found is None:
            return True
        if found < 0:
            log.debug("pidfd_open: kernel too old; polling /proc")
        pidfd = found
    try:
        # A pidfd names the process itself, so a reused pid cannot fool it; re-check the start
        # time once in case the init exited before pidfd_open ran.
        if not init_alive(pid, start_time):
            return True
        watch = [signals.read_fd] + ([pidfd] if pidfd >= 0 else [])
        timeout = None if pidfd >= 0 else POLL_INTERVAL
        while signals.received is None:
            ready, _, _ = select.select(watch, [], [], timeout)
            if pidfd in ready:
                return True
            if signals.read_fd in ready:
                signals.drain()
            if pidfd < 0 and not init_alive(pid, start_time):
                return True
        return False
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def stop_requested(ctx: Context, name: str) -> bool:
    """True if an explicit `richc stop` marked the container since it was last started."""
    try:
        return bool(ctx.store.get(name).load_state().stop_requested)
    except RichcError:
        return True  # removed under our feet: nothing left to supervise


def _start_or_adopt(ctx: Context, name: str, *, restarting: bool) -> tuple[int, int | None]:
    from richc import lifecycle

    cdir = ctx.store.get(name)
    state = cdir.load_state()
    running, pid = lifecycle.is_running(cdir, state)
    if running and pid and not restarting:
        log.info("%s is already running (pid %d); supervising it", name, pid)
        from richc.procs import start_time

        return pid, start_time(pid)
    state = lifecycle.start(ctx, name, unless_stop_requested=restarting)
    assert state.init_run is not None  # start records the init it started
    return state.init_run.pid, state.init_run.pid_start_time


def supervise(ctx: Context, name: str, rules: RestartRules | None = None) -> int:
    """Run *name* in the foreground until it stops; return the exit status (see module doc)."""
    rules = rules or RestartRules()
    managed = notify_socket() is not None  # a service manager restarts us, not we ourselves
    use_pidfd = pidfds_usable()
    signals = _Signals()
    with signals.installed(), richc_log.fields(container=name, operation="supervise"):
        attempt = 0
        restarting = False
        while True:
            try:
                pid, started = _start_or_adopt(ctx, name, restarting=restarting)
            except Conflict:
                if restarting and stop_requested(ctx, name):
                    log.info("%s was stopped on request; not restarting it", name)
                    return EXIT_STOPPED
                raise
            except RichcError as exc:
                if not restarting:
                    raise
                log.error("restarting %s failed: %s", name, exc)
                pid, started = 0, None
            if pid:
                up_since = time.monotonic()
                outcome = _watch(ctx, name, pid, started, signals, use_pidfd)
                if outcome is not None:
                    return outcome
                if time.monotonic() - up_since >= STABLE_AFTER:
                    attempt = 0
            if signals.received is not None:
                log.info("%s: got %s; not restarting", name, signal.Signals(signals.received).name)
                return EXIT_STOPPED
            policy = _policy(ctx, name)
            attempt += 1
            if managed or not rules.allows(policy, attempt):
                why = (
                    "the service manager applies the restart policy"
                    if managed
                    else f"restart: {policy.value}"
                    + (f", gave up after {attempt - 1} restarts" if attempt > 1 else "")
                )
                log.error("%s: init died (%s)", name, why)
                _tell_manager(STATUS=f"{name}: init died")
                return EXIT_INIT_DIED
            delay = rules.backoff(attempt)
            log.warning(
                "%s: restart %d%s in %.1f s (restart: %s)",
                name,
                attempt,
                f" of {rules.max_restarts}" if policy is cfg.RestartPolicy.on_failure else "",
                delay,
                policy.value,
            )
            _tell_manager(STATUS=f"{name}: init died; restarting in {delay:.1f} s")
            if signals.sleep(delay) or stop_requested(ctx, name):
                log.info("%s: stop requested while waiting; not restarting it", name)
                return EXIT_STOPPED
            restarting = True


def _watch(
    ctx: Context, name: str, pid: int, started: int | None, signals: _Signals, use_pidfd: bool
) -> int | None:
    """Supervise one init until it exits, following it through `richc restart`.

    Return the exit status when supervision ends, or None when the init died on its own.
    """
    while True:
        status = f"{name} running (init pid {pid})"
        log.info("%s", status)
        _tell_manager(READY=1, STATUS=status, MAINPID=os.getpid())
        if not wait_for_exit(pid, started, signals, use_pidfd):
            return _stop_on_signal(ctx, name, signals.received or signal.SIGTERM)
        if not stop_requested(ctx, name):
            rebooted = _follow_reboot(ctx, name, pid)
            if rebooted is not None:
                log.info("%s rebooted from inside; supervising its new init", name)
                pid, started = rebooted
                continue
            log.warning("%s: init (pid %d) exited without a `richc stop`", name, pid)
            _record_death(ctx, name)
            return None
        follow = _await_restart(ctx, name, pid, signals)
        if follow is None:
            if signals.received is not None:  # stop what a restart may be bringing up
                return _stop_on_signal(ctx, name, signals.received)
            log.info("%s was stopped on request", name)
            return EXIT_STOPPED
        log.info("%s was restarted (richc restart); supervising its new init", name)
        pid, started = follow


def _await_restart(
    ctx: Context, name: str, old_pid: int, signals: _Signals
) -> tuple[int, int | None] | None:
    """After a requested stop: the new init if it was `richc restart`'s, else None.

    restart's stop leaves ``restarting`` in the state and its start clears it; the wait is
    bounded in case the start fails before it gets that far.
    """
    deadline = time.monotonic() + RESTART_WAIT
    while time.monotonic() < deadline:
        try:
            state = ctx.store.get(name).load_state()
        except RichcError:
            return None
        if not state.restarting:
            record = state.init_run
            if record is None:
                return None
            pid, started = record.pid, record.pid_start_time
            if pid != old_pid and init_alive(pid, started):
                return pid, started
            return None
        if signals.sleep(0.1):
            return None
    log.warning("%s: `richc restart` did not bring it back within %d s", name, RESTART_WAIT)
    return None


def _follow_reboot(ctx: Context, name: str, old_pid: int) -> tuple[int, int | None] | None:
    from richc import lifecycle

    # LXC's monitor forks the new init a moment after the old one exits (after its
    # post-stop callback, which returns at once for a reboot); a monitor that is gone, or
    # still busy after REBOOT_WAIT (running poststop hooks), means a real stop.
    deadline = time.monotonic() + REBOOT_WAIT
    while True:
        try:
            found = lifecycle.follow_reboot(ctx, name, old_pid)
            if found is not None:
                return found
            if time.monotonic() > deadline or not lifecycle.may_reboot(ctx, name):
                return None
        except RichcError:
            return None
        time.sleep(0.05)


def _policy(ctx: Context, name: str) -> cfg.RestartPolicy:
    try:
        return ctx.store.get(name).load_config().restart
    except RichcError:
        return cfg.RestartPolicy.no


def _record_death(ctx: Context, name: str) -> None:
    """Let richc finish what a stop does (state, poststop work) without marking a request."""
    from richc import lifecycle

    try:
        lifecycle.stop(ctx, name, requested=False)
    except RichcError as exc:
        log.warning("%s: cleaning up after the init's death failed: %s", name, exc)


def _stop_on_signal(ctx: Context, name: str, signum: int) -> int:
    from richc import lifecycle

    log.info("%s: got %s; stopping it", name, signal.Signals(signum).name)
    _tell_manager(STOPPING=1, STATUS=f"stopping {name}")
    # Further stop signals must not interrupt the clean stop half-way; systemd's
    # TimeoutStopSec (then SIGKILL) bounds it.
    for extra in STOP_SIGNALS:
        signal.signal(extra, signal.SIG_IGN)
    with richc_log.fields(operation="stop"):
        clean = lifecycle.stop(ctx, name)
    log.info("%s stopped%s", name, "" if clean else " (killed after the stop timeout)")
    return EXIT_STOPPED
