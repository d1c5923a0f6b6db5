"""The lxcfs view list and its LXC/OCI renderings, from fake lxcfs homes (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcfs_integration.views import (
    View,
    ViewKind,
    check_views,
    compute_views,
    render_lxc_config,
    render_lxc_entries,
    render_oci_mounts,
)


def fake_home(root: Path, *, proc: tuple[str, ...], cpu: tuple[str, ...] = ()) -> Path:
    home = root / "lxcfs"
    (home / "proc").mkdir(parents=True)
    for name in proc:
        (home / "proc" / name).parent.mkdir(parents=True, exist_ok=True)
        (home / "proc" / name).write_text("x\n")
    cpu_dir = home / "sys/devices/system/cpu"
    cpu_dir.mkdir(parents=True)
    for name in cpu:
        (cpu_dir / name).write_text("0\n")
    return home


def test_lxcfs5_home_gives_proc_files_and_whole_cpu_dir(tmp_path: Path) -> None:
    home = fake_home(
        tmp_path,
        proc=("meminfo", "cpuinfo", "stat", "uptime", "diskstats", "swaps", "loadavg", "slabinfo"),
        cpu=("online", "uevent", "possible"),
    )
    views = compute_views(home)
    targets = [v.target for v in views]
    assert targets == [
        "/proc/cpuinfo",
        "/proc/diskstats",
        "/proc/loadavg",
        "/proc/meminfo",
        "/proc/slabinfo",
        "/proc/stat",
        "/proc/swaps",
        "/proc/uptime",
        "/sys/devices/system/cpu",
    ]
    assert views[-1] == View(
        home / "sys/devices/system/cpu", "/sys/devices/system/cpu", ViewKind.DIR
    )
    assert all(v.kind is ViewKind.FILE for v in views[:-1])


def test_older_lxcfs_binds_only_cpu_online_and_skips_missing(tmp_path: Path) -> None:
    home = fake_home(tmp_path, proc=("meminfo", "uptime"), cpu=("online",))
    assert [(v.target, v.kind) for v in compute_views(home)] == [
        ("/proc/meminfo", ViewKind.FILE),
        ("/proc/uptime", ViewKind.FILE),
        ("/sys/devices/system/cpu/online", ViewKind.FILE),
    ]


def test_pressure_files_only_when_offered(tmp_path: Path) -> None:
    home = fake_home(tmp_path, proc=("meminfo", "pressure/cpu", "pressure/memory"))
    assert [v.target for v in compute_views(home)] == [
        "/proc/meminfo",
        "/proc/pressure/cpu",
        "/proc/pressure/memory",
    ]


def test_empty_home_gives_no_views(tmp_path: Path) -> None:
    assert compute_views(tmp_path / "missing") == ()


def test_a_parent_of_the_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "lxcfs"
    for bad in (home, tmp_path, Path("/")):
        with pytest.raises(ValueError, match="not inside the lxcfs home"):
            check_views([View(bad, "/proc/meminfo", ViewKind.FILE)], home)
    with pytest.raises(ValueError, match="not a clean absolute path"):
        check_views([View(home / "proc/meminfo", "proc/../etc", ViewKind.FILE)], home)
    check_views([View(home / "proc/meminfo", "/proc/meminfo", ViewKind.FILE)], home)


def test_lxc_entries_are_relative_optional_and_escaped() -> None:
    views = [
        View(Path("/var/lib/lxcfs/proc/meminfo"), "/proc/meminfo", ViewKind.FILE),
        View(Path("/srv/my lxcfs/sys/devices/system/cpu"), "/sys/devices/system/cpu", ViewKind.DIR),
    ]
    assert render_lxc_entries(views) == (
        "/var/lib/lxcfs/proc/meminfo proc/meminfo none bind,optional,create=file 0 0",
        "/srv/my\\040lxcfs/sys/devices/system/cpu sys/devices/system/cpu none "
        "bind,optional,create=dir 0 0",
    )
    assert render_lxc_config(views[:1]) == (
        "lxc.mount.entry = /var/lib/lxcfs/proc/meminfo proc/meminfo none "
        "bind,optional,create=file 0 0\n"
    )


def test_oci_mounts_leave_out_what_runc_refuses_under_proc() -> None:
    views = [
        View(Path("/h/proc/meminfo"), "/proc/meminfo", ViewKind.FILE),
        View(Path("/h/proc/pressure/cpu"), "/proc/pressure/cpu", ViewKind.FILE),
        View(Path("/h/sys/devices/system/cpu"), "/sys/devices/system/cpu", ViewKind.DIR),
    ]
    assert render_oci_mounts(views) == [
        {
            "destination": "/proc/meminfo",
            "type": "bind",
            "source": "/h/proc/meminfo",
            "options": ["bind", "rprivate"],
        },
        {
            "destination": "/sys/devices/system/cpu",
            "type": "bind",
            "source": "/h/sys/devices/system/cpu",
            "options": ["bind", "rprivate"],
        },
    ]
