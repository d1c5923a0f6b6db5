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

from tests.integration.conftest import (  # noqa: F401  (fixtures are found by name)
    RICHC,
    RichcRunner,
    image_cache,
    name,
    richc,
    richc_root,
    unique_name,
)

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
def warm_root(richc: RichcRunner, richc_root: Path) -> Path:
    """The private root after one container went through its whole life: the busybox
    image, compiled templates, host facts and lxcfs views exist, so what a test sees
    appear afterwards is its own doing, not a first use's."""
    warm = unique_name("richc-warm")
    richc("create", warm, "--from", "busybox")
    richc("start", warm)
    richc("exec", warm, "--", "true")
    richc("stop", warm, "--timeout", "5")
    richc("rm", warm)
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
