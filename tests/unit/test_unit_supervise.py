"""The supervisor's wait: a pidfd or /proc polling, woken by the init's exit or a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest

from richc.procs import start_time
from richc.supervise import _Signals, init_alive, wait_for_exit


@pytest.mark.parametrize("use_pidfd", [True, False], ids=["pidfd", "polling"])
def test_wait_returns_when_the_process_exits(use_pidfd: bool) -> None:
    proc = subprocess.Popen(["sleep", "600"])
    try:
        started = start_time(proc.pid)
        assert init_alive(proc.pid, started)
        # Killed while we wait; unreaped it is a zombie, which counts as exited.
        timer = threading.Timer(0.2, proc.kill)
        timer.start()
        signals = _Signals()
        with signals.installed():
            assert wait_for_exit(proc.pid, started, signals, use_pidfd) is True
        timer.join()
        assert not init_alive(proc.pid, started)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("use_pidfd", [True, False], ids=["pidfd", "polling"])
def test_wait_returns_on_a_stop_signal(use_pidfd: bool) -> None:
    before = signal.getsignal(signal.SIGTERM)
    proc = subprocess.Popen(["sleep", "600"])
    try:
        signals = _Signals()
        with signals.installed():
            assert signal.getsignal(signal.SIGTERM) != before
            timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
            timer.start()
            assert wait_for_exit(proc.pid, start_time(proc.pid), signals, use_pidfd) is False
            timer.join()
            assert signals.received == signal.SIGTERM
        assert proc.poll() is None, "the process itself was left alone"
    finally:
        proc.kill()
        proc.wait()
    # The previous handler is back once supervision ends.
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_reused_pid_is_not_the_init() -> None:
    proc = subprocess.Popen(["sleep", "600"])
    try:
        assert not init_alive(proc.pid, (start_time(proc.pid) or 0) + 1)
    finally:
        proc.kill()
        proc.wait()
