"""Health checks against fake /proc trees and files (no root, no lxcfs)."""

from __future__ import annotations

from pathlib import Path

from lxcfs_integration.health import HomeState, container_health, try_read
from lxcfs_integration.views import View, ViewKind

VIEWS = (
    View(Path("/h/proc/meminfo"), "/proc/meminfo", ViewKind.FILE),
    View(Path("/h/sys/devices/system/cpu"), "/sys/devices/system/cpu", ViewKind.DIR),
)


def fake_proc(tmp_path: Path, mountinfo: str) -> Path:
    proc = tmp_path / "proc"
    rootfs = tmp_path / "rootfs"
    (rootfs / "proc").mkdir(parents=True)
    (rootfs / "proc" / "meminfo").write_text("MemTotal: 1 kB\n")
    (rootfs / "sys/devices/system/cpu").mkdir(parents=True)
    (proc / "42").mkdir(parents=True)
    (proc / "42" / "mountinfo").write_text(mountinfo)
    (proc / "42" / "root").symlink_to(rootfs)
    return proc


def test_try_read_reports_the_error_text(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert try_read(tmp_path / "f") is None
    assert try_read(tmp_path, directory=True) is None
    assert try_read(tmp_path / "missing") == "No such file or directory"


def test_container_with_all_views_mounted_and_readable_is_healthy(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        "1 0 0:1 / / rw - ext4 /dev/x rw\n"
        "2 1 0:2 /proc/meminfo /proc/meminfo rw - fuse.lxcfs lxcfs rw\n"
        "3 1 0:2 /sys/devices/system/cpu /sys/devices/system/cpu rw - fuse.lxcfs lxcfs rw\n",
    )
    health = container_health(42, VIEWS, proc=proc)
    assert health.healthy
    assert [v.target for v in health.views] == ["/proc/meminfo", "/sys/devices/system/cpu"]


def test_unmounted_view_is_unhealthy_though_readable(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        "1 0 0:1 / / rw - ext4 /dev/x rw\n"
        "2 1 0:2 /proc/meminfo /proc/meminfo rw - fuse.lxcfs lxcfs rw\n",
    )
    health = container_health(42, VIEWS, proc=proc)
    assert not health.healthy
    cpu = health.views[1]
    assert cpu.readable and not cpu.mounted
    assert cpu.error is not None and "not mounted" in cpu.error


def test_unreadable_view_is_unhealthy(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        "2 1 0:2 /proc/meminfo /proc/meminfo rw - fuse.lxcfs lxcfs rw\n"
        "3 1 0:2 /sys/devices/system/cpu /sys/devices/system/cpu rw - fuse.lxcfs lxcfs rw\n",
    )
    (tmp_path / "rootfs/proc/meminfo").unlink()
    health = container_health(42, VIEWS, proc=proc)
    assert not health.healthy
    assert health.views[0].mounted and not health.views[0].readable


def test_gone_container_reports_an_error(tmp_path: Path) -> None:
    health = container_health(7, VIEWS, proc=tmp_path)
    assert not health.healthy and health.error is not None and "pid 7" in health.error


def test_home_state_predicates() -> None:
    assert HomeState.HEALTHY.serving() and not HomeState.DEAD.serving()
    assert HomeState.DEAD.needs_unmount() and not HomeState.ABSENT.needs_unmount()
