"""Fixtures for the stress and crash tests: the integration tests' private root and richc
runner (imported, so both suites run richc the same way), plus a warmed root.

Every test here drives richc only through its command line, as an operator would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import conftest as _integration
from tests.integration.conftest import RICHC, RichcRunner, unique_name

# The integration tests' fixtures, found by pytest under these names: a private root per
# test sharing the session's image cache, and the richc runner that cleans up after it.
image_cache = _integration.image_cache
richc_root = _integration.richc_root
richc = _integration.richc
name = _integration.name

# Two shared cores: more workers only queue on the CPU and on liblxc's own locks.
WORKERS = int(os.environ.get("RICHC_STRESS_WORKERS", "8"))


@dataclass(frozen=True)
class Outcome:
    """One richc command's result, with how long it took."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:
        return (
            f"richc {' '.join(self.args)} -> {self.returncode} in {self.seconds:.2f}s\n"
            f"stdout: {self.stdout.strip()[:2000]}\nstderr: {self.stderr.strip()[:2000]}"
        )


Timed = Callable[..., Outcome]


@pytest.fixture
def timed(richc: RichcRunner) -> Timed:
    """``timed("start", name)``: richc's result and duration, never failing by itself
    (safe to call from worker threads; the test judges the outcome)."""

    def run(*args: str, timeout: float = 300) -> Outcome:
        t0 = time.monotonic()
        proc = richc(*args, check=False, timeout=timeout)
        return Outcome(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)

    return run


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="richc-stress") as executor:
        yield executor


@pytest.fixture
def warm_root(richc: RichcRunner, richc_root: Path) -> Path:  # richc: its clean-up
    """The private root after one container went through its whole life: the busybox
    image, compiled templates, host facts and lxcfs views exist, so what a test sees
    appear afterwards is its own doing, not a first use's."""
    warm(richc_root)
    return richc_root


def kill_group_if_own(proc: subprocess.Popen[str]) -> None:
    """SIGKILL *proc*, and its process group when it leads one (started in its own session)."""
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_richc(
    root: Path, *args: str, timeout: float = 300, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """richc under *root* outside any fixture (module-scoped set-ups, clean-ups)."""
    proc = subprocess.run(
        [str(RICHC), *args],
        env=dict(os.environ, RICHC_ROOT=str(root)),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"richc {' '.join(args)} exited {proc.returncode}\n{proc.stderr}")
    return proc


def warm(root: Path) -> None:
    """Take *root* through one container's whole life (see :func:`warm_root`)."""
    name = unique_name("richc-warm")
    for args in (
        ("create", name, "--from", "busybox"),
        ("start", name),
        ("exec", name, "--", "true"),
        ("stop", name, "--timeout", "5"),
        ("rm", name),
    ):
        run_richc(root, *args, check=True)


STAGES = ("prestart", "poststart", "prestop", "poststop")


def install_step_hooks(root: Path, seconds: float) -> None:
    """A hooks.d hook at every stage that sleeps *seconds*: each prints a `+ PATH` step
    line under --debug and holds richc inside that step long enough to be killed there."""
    for stage in STAGES:
        directory = root / "etc/richc/hooks.d" / stage
        directory.mkdir(parents=True, exist_ok=True)
        hook = directory / "10-step"
        hook.write_text(f"#!/bin/sh\nsleep {seconds}\n")
        hook.chmod(0o755)
