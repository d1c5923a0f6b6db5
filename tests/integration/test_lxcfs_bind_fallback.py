"""The pre-5.2 fallback (setns + plain bind mount), forced on this kernel.

It only works where the target namespace still sees the lxcfs home, so the "container"
here is a process in a private mount namespace copied from the host after lxcfs started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcfs_integration import daemon, health, mountinfo, remount
from lxcfs_integration.views import compute_views

pytestmark = pytest.mark.integration


@pytest.fixture
def served_home(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("lxcfs") is None or shutil.which("unshare") is None:
        pytest.skip("needs root, lxcfs and unshare")
    home, run_dir = tmp_path / "home", tmp_path / "run"
    proc = daemon.start(home, run_dir)
    yield home
    daemon.stop(proc)


@pytest.fixture
def namespaced_sleeper() -> Iterator[int]:
    child = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sleep", "600"],
        stdin=subprocess.DEVNULL,
    )
    try:
        # unshare execs sleep in place: wait until the pid's namespace differs from ours.
        for _ in range(200):
            if os.readlink(f"/proc/{child.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"):
                break
            time.sleep(0.01)
        yield child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_bind_method_attaches_views_where_the_home_is_visible(
    served_home: Path, namespaced_sleeper: int
) -> None:
    views = [v for v in compute_views(served_home) if v.target == "/proc/meminfo"]
    report = remount.remount_views(namespaced_sleeper, views, method=remount.Method.BIND)
    assert report.ok, report
    assert report.method is remount.Method.BIND
    assert [r.outcome for r in report.results] == [remount.Outcome.ATTACHED]
    top = mountinfo.top_at(mountinfo.read(namespaced_sleeper), "/proc/meminfo")
    assert top is not None and top.is_lxcfs and top.root == "/proc/meminfo"
    assert health.container_health(namespaced_sleeper, views).healthy
    # Our own namespace is untouched: the host keeps the kernel's file.
    own = mountinfo.top_at(mountinfo.read(), "/proc/meminfo")
    assert own is None or not own.is_lxcfs
