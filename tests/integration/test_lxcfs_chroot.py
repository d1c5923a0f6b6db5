"""Remount into a namespace whose init chrooted: targets must resolve under the init's root.

setns alone lands on the namespace's root; an init that chrooted (some runtimes do, instead
of pivot_root) sees another /proc. remount chroots to /proc/PID/root first, so the view goes
where the init looks.
"""

from __future__ import annotations

import os
import shutil
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
    if not Path("/bin/busybox").exists():
        pytest.skip("busybox-static is not installed")
    proc = daemon.start(tmp_path / "home", tmp_path / "run")
    yield proc.home
    daemon.stop(proc)


@pytest.fixture
def chrooted_sleeper(tmp_path: Path) -> Iterator[int]:
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "proc").mkdir()
    shutil.copy2("/bin/busybox", rootfs / "bin/busybox")
    script = f"mount -t proc proc {rootfs}/proc && exec chroot {rootfs} /bin/busybox sleep 600"
    child = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{child.pid}/root") != str(rootfs):
            assert time.monotonic() < deadline, "the sleeper never chrooted"
            time.sleep(0.01)
        yield child.pid
    finally:
        child.kill()
        child.wait()


def test_views_land_under_the_chrooted_inits_root(served_home: Path, chrooted_sleeper: int) -> None:
    views = [v for v in compute_views(served_home) if v.target == "/proc/meminfo"]
    before = mountinfo.top_at(mountinfo.read(chrooted_sleeper), "/proc/meminfo")
    assert before is None  # its /proc/meminfo is the plain procfs file
    report = remount.remount_views(chrooted_sleeper, views)
    assert report.ok, report
    # mountinfo names mount points relative to the process's root: an lxcfs bind at
    # /proc/meminfo here is the file the chrooted process reads, not the namespace root's.
    top = mountinfo.top_at(mountinfo.read(chrooted_sleeper), "/proc/meminfo")
    assert top is not None and top.is_lxcfs
    assert health.container_health(chrooted_sleeper, views).healthy
    meminfo = Path(f"/proc/{chrooted_sleeper}/root/proc/meminfo").read_text()
    assert meminfo.startswith("MemTotal:")
