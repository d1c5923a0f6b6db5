"""Starting, health-checking, recovering and stopping a private lxcfs (no containers)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcfs_integration import daemon, health, mountinfo
from lxcfs_integration.errors import LxcfsStartError

pytestmark = pytest.mark.integration


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    if os.geteuid() != 0 or shutil.which("lxcfs") is None or not Path("/dev/fuse").exists():
        pytest.skip("needs root, lxcfs and /dev/fuse")
    home, run_dir = tmp_path / "home", tmp_path / "run"
    yield home, run_dir
    pid = daemon.read_pidfile(daemon.pidfile_in(run_dir), home)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    daemon.unmount_dead(home)


def test_start_serves_and_stop_leaves_nothing(dirs: tuple[Path, Path]) -> None:
    home, run_dir = dirs
    assert health.home_status(home).state is health.HomeState.ABSENT
    proc = daemon.start(home, run_dir)
    assert proc.pid is not None and proc.manager is daemon.Manager.SPAWNED
    assert daemon.read_pidfile(run_dir / "lxcfs.pid", home) == proc.pid
    # Detached: not a child of this test process, and in a session of its own.
    ppid = int(Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    assert ppid != os.getpid()
    assert os.getsid(proc.pid) != os.getsid(0)
    assert "MemTotal:" in (home / "proc/meminfo").read_text()
    assert daemon.current(home, run_dir) == proc
    daemon.stop(proc)
    assert health.home_status(home).state is health.HomeState.ABSENT
    assert not mountinfo.lxcfs_at(mountinfo.read(), os.path.realpath(home))
    assert not os.path.exists(f"/proc/{proc.pid}") or not daemon.is_lxcfs_for(proc.pid, home)


def test_dead_mount_is_detected_and_recovered(dirs: tuple[Path, Path]) -> None:
    home, run_dir = dirs
    first = daemon.start(home, run_dir)
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    status = health.home_status(home)
    while status.state.serving() and time.monotonic() < deadline:
        time.sleep(0.01)
        status = health.home_status(home)
    assert status.state is health.HomeState.DEAD
    # ENOTCONN; ECONNABORTED when the read was in flight as the connection went down.
    assert status.error in (
        "Transport endpoint is not connected",
        "Software caused connection abort",
    )
    second, started = daemon.ensure(home, run_dir)
    assert started and second.pid != first.pid
    assert health.home_status(home).state is health.HomeState.HEALTHY
    # The dead mount was detached, not left stacked under the new one.
    assert len(mountinfo.lxcfs_at(mountinfo.read(), os.path.realpath(home))) == 1
    again, started_again = daemon.ensure(home, run_dir)
    assert again == second and not started_again
    daemon.stop(second)


def test_lxcfs_that_cannot_start_is_an_error_with_its_log(dirs: tuple[Path, Path]) -> None:
    home, run_dir = dirs
    with pytest.raises(LxcfsStartError) as info:
        daemon.start(home, run_dir, options=["--no-such-flag"], timeout=5)
    assert info.value.hint is not None and "lxcfs.log" in info.value.hint
    assert health.home_status(home).state is health.HomeState.ABSENT
