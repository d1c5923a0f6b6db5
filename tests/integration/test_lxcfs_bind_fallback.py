"""The pre-5.2 fallback (setns + plain bind mount), forced on this kernel.

It only works where the target namespace, from its init's root, still sees the lxcfs home:
a process in a private mount namespace copied from the host after lxcfs started does; a
richc container, whose root is its own rootfs, does not (README, "Recovery without
restarts").
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
from tests.integration.conftest import RichcRunner
from tests.integration.test_lxcfs_cli import (
    host_mem_total,
    inspect,
    lxcfs_home,
    lxcfs_status,
    mem_total,
)

pytestmark = pytest.mark.integration

__all__ = ["lxcfs_home"]


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


def test_bind_method_cannot_reach_the_home_from_a_richc_container(
    richc: RichcRunner, lxcfs_home: Path, name: str
) -> None:
    """What a kernel before 5.2 gets: a richc container's root is its own rootfs, which has
    no lxcfs home, so the bind finds no source. The dead binds are detached all the same,
    and the container reads the kernel's own (host) values until open_tree, or a restart of
    the container, brings views back."""
    richc("create", name, "--memory", "256M", "--start")
    pid = inspect(richc, name)["pid"]
    os.kill(lxcfs_status(richc)[1]["host"]["pid"], signal.SIGKILL)
    richc("lxcfs", "start")
    views = compute_views(lxcfs_home)

    report = remount.remount_views(pid, views, method=remount.Method.BIND)
    assert not report.ok and report.error is None
    assert {r.outcome for r in report.results} == {remount.Outcome.FAILED}
    assert {r.error for r in report.results} == {"mount: No such file or directory"}
    assert all(r.detached == 1 for r in report.results)
    assert mem_total(richc, name) == host_mem_total()  # no ENOTCONN, but no view either

    assert richc("lxcfs", "remount", name).returncode == 0  # open_tree: views are back
    assert mem_total(richc, name) == "262144 kB"
    assert inspect(richc, name)["pid"] == pid
