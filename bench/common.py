"""Shared helpers for richc's benchmarks: timing commands and printing medians with ratios."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

RICHC = str(Path(sys.executable).with_name("richc"))
VENV_PYTHON = sys.executable


def timed(argv: Sequence[str], env: dict[str, str] | None = None, check: bool = True) -> float:
    """Run *argv* once and return its wall time in seconds."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{proc.stderr}")
    return elapsed


def timed_call(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


class Report:
    def __init__(self, title: str, left: str = "richc", right: str = "raw") -> None:
        self.title = title
        self.left, self.right = left, right  # the two sides' names in the header
        self.rows: list[tuple[str, float, str, float]] = []

    def add(self, step: str, richc: Sequence[float], raw_name: str, raw: Sequence[float]) -> None:
        self.rows.append((step, median_ms(richc), raw_name, median_ms(raw)))

    def print(self) -> None:
        left, right = self.left, self.right
        print(f"\n== {self.title} (medians; ratio = {left} / {right}, overhead = {left} - {right})")
        header = f"{'step':<28}{left + ' ms':>10}  {right + ' tool':<30}{right + ' ms':>9}"
        print(f"{header}{'ratio':>8}{'overhead ms':>13}")
        for step, richc_ms, raw_name, raw_ms in self.rows:
            ratio = richc_ms / raw_ms if raw_ms else float("inf")
            print(
                f"{step:<28}{richc_ms:>10.1f}  {raw_name:<30}{raw_ms:>9.1f}{ratio:>8.2f}"
                f"{richc_ms - raw_ms:>13.1f}"
            )
        sys.stdout.flush()


def richc_env(root: Path) -> dict[str, str]:
    return dict(os.environ, RICHC_ROOT=str(root))
