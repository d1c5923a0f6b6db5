"""Limits on real containers, checked from both sides: the cgroup file on the host holds the
value, and the effect is seen inside (OOM kill, nproc, fork failures, ulimit -n, spinners
held to the CPU quota, direct writes slowed by a bps throttle).

Runs on this hybrid host (cgroup v1 limits) and, unchanged, inside the pure cgroup v2 VM
(test_limits_vm.py). The helpers find the host's cgroup files independently of
richc.cgroups, from /proc/PID/cgroup and /sys/fs/cgroup; test_set.py and test_stats.py
use them too.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RichcRunner

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_version() -> int:
    """The hierarchy the limits go to: 1 where a v1 memory controller is mounted (hybrid)."""
    from richc.hostfacts import probe_facts

    return probe_facts().cgroup_version


# The file each limit lands in, per cgroup version.
FILES = {
    1: {
        "memory": "memory.limit_in_bytes",
        "cpus": "cpu.cfs_quota_us",
        "cpuset": "cpuset.cpus",
        "pids": "pids.max",
        "oom": "memory.oom_control",
        "pids_events": "pids.events",
    },
    2: {
        "memory": "memory.max",
        "cpus": "cpu.max",
        "cpuset": "cpuset.cpus",
        "pids": "pids.max",
        "oom": "memory.events",
        "pids_events": "pids.events",
    },
}


def expected_cpus(cpus: float, version: int) -> str:
    quota = round(cpus * 100_000)
    return str(quota) if version == 1 else f"{quota} 100000"


def inspect(richc: RichcRunner, name: str) -> dict[str, Any]:
    data = json.loads(richc("inspect", name).stdout)
    assert isinstance(data, dict)
    return data


def init_pid(richc: RichcRunner, name: str) -> int:
    pid = inspect(richc, name)["pid"]
    assert isinstance(pid, int), f"{name} is not running"
    return pid


def host_file(pid: int, filename: str) -> Path:
    """The host path of *filename* in the cgroup of the container whose init is *pid*."""
    version = cgroup_version()
    controller = filename.split(".")[0]
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if version == 2 and hierarchy == "0":
            base = CGROUP_ROOT if (CGROUP_ROOT / "cgroup.controllers").exists() else None
            if base is None:
                base = CGROUP_ROOT / "unified"
            return base / rel / filename
        if version == 1 and controller in controllers.split(","):
            for mount in CGROUP_ROOT.iterdir():
                if controller in mount.name.split(","):
                    return mount / rel / filename
    raise AssertionError(f"no {controller} cgroup for pid {pid}")


def read_host(pid: int, filename: str) -> str:
    return host_file(pid, filename).read_text().strip()


def read_inside(richc: RichcRunner, name: str, filename: str) -> str:
    """*filename* as the container sees its own cgroup (through its cgroup namespace).

    Where LXC mounted no cgroup tree inside (busybox on this hybrid host), the script
    mounts the hierarchy itself, reads, and unmounts: the container holds CAP_SYS_ADMIN.
    """
    if cgroup_version() == 2:
        where, mount = "/sys/fs/cgroup", "mount -t cgroup2 none /run/richc-test-cg"
    else:
        controller = filename.split(".")[0]
        hierarchy = next(m.name for m in CGROUP_ROOT.iterdir() if controller in m.name.split(","))
        where = f"/sys/fs/cgroup/{hierarchy}"
        mount = f"mount -t cgroup -o {hierarchy} cgroup /run/richc-test-cg"
    script = (
        f"if [ -e {where}/{filename} ]; then exec cat {where}/{filename}; fi; "
        f"mkdir -p /run/richc-test-cg && {mount} && cat /run/richc-test-cg/{filename}; "
        "s=$?; umount /run/richc-test-cg; exit $s"
    )
    return richc("exec", name, "--", "sh", "-c", script).stdout.strip()


def counter(text: str, key: str) -> int:
    """A ``key value`` line of memory.events / memory.oom_control / pids.events."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    raise AssertionError(f"no {key} in {text!r}")


# -- tests -------------------------------------------------------------------------------------

pytestmark = pytest.mark.integration
M = 1 << 20


def test_memory_hog_is_oom_killed_at_32m(richc: RichcRunner, name: str) -> None:
    richc("create", name, "--no-lxcfs", "--memory", "32M", "--start")
    pid = init_pid(richc, name)
    version = cgroup_version()
    assert int(read_host(pid, FILES[version]["memory"])) == 32 * M
    assert int(read_inside(richc, name, FILES[version]["memory"])) == 32 * M
    # busybox dd holds one block of bs bytes in memory: 16M fits, 64M cannot.
    small = richc("exec", name, "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=16M", "count=1")
    assert small.returncode == 0
    before = counter(read_host(pid, FILES[version]["oom"]), "oom_kill")
    hog = richc(
        "exec", name, "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1", check=False
    )
    assert hog.returncode == 128 + 9, hog  # SIGKILL from the OOM killer
    assert counter(read_host(pid, FILES[version]["oom"]), "oom_kill") == before + 1
    assert richc("exec", name, "--", "true").returncode == 0  # init survived


def test_cpuset_is_what_nproc_sees(richc: RichcRunner, name: str) -> None:
    online = Path("/sys/devices/system/cpu/online").read_text().strip()
    if online in ("0", ""):
        pytest.skip("one CPU: a cpuset cannot narrow it")
    richc("create", name, "--no-lxcfs", "--cpuset", "1", "--cpus", "0.5", "--start")
    pid = init_pid(richc, name)
    version = cgroup_version()
    assert read_host(pid, "cpuset.cpus") == "1"
    assert read_host(pid, FILES[version]["cpus"]) == expected_cpus(0.5, version)
    assert richc("exec", name, "--", "nproc").stdout.strip() == "1"
    affinity = richc("exec", name, "--", "grep", "Cpus_allowed_list", "/proc/self/status")
    assert affinity.stdout.split()[-1] == "1"


def cpu_usage(pid: int, version: int) -> tuple[float, int]:
    """The container's CPU seconds so far and its count of throttled CFS periods."""
    stat = read_host(pid, "cpu.stat")
    if version == 1:
        return int(read_host(pid, "cpuacct.usage")) / 1e9, counter(stat, "nr_throttled")
    return counter(stat, "usage_usec") / 1e6, counter(stat, "nr_throttled")


def test_cpus_half_holds_two_spinners_to_half_a_cpu(richc: RichcRunner, name: str) -> None:
    richc("create", name, "--no-lxcfs", "--cpus", "0.5", "--start")
    pid = init_pid(richc, name)
    version = cgroup_version()
    spin = "(while :; do :; done) >/dev/null 2>&1 &"
    spinners = richc("exec", name, "--", "sh", "-c", f"{spin} a=$!; {spin} echo $a $!").stdout
    try:
        # Two spinners want two CPUs; the quota gives them 50 ms per 100 ms period. On a
        # busy host they may get less than that (and never be throttled) for a while, so
        # wait for the first throttled period rather than assume it.
        deadline = time.monotonic() + 30
        while cpu_usage(pid, version)[1] == 0:
            assert time.monotonic() < deadline, "the spinners were never throttled"
            time.sleep(0.2)
        used0 = cpu_usage(pid, version)[0]
        wall0 = time.monotonic()
        time.sleep(2)
        used1 = cpu_usage(pid, version)[0]
        wall1 = time.monotonic()
    finally:
        richc("exec", name, "--", "kill", *spinners.split(), check=False)
    rate = (used1 - used0) / (wall1 - wall0)
    # Unlimited they would burn up to 2 CPU-seconds a second. The quota may overshoot by
    # about one period's slack across the window, hence 0.7 and not 0.5.
    assert rate <= 0.7, f"{rate:.2f} CPU-seconds per second under --cpus 0.5"


def test_fork_loop_stops_at_pids_20(richc: RichcRunner, name: str) -> None:
    richc("create", name, "--no-lxcfs", "--pids", "20", "--start")
    pid = init_pid(richc, name)
    assert read_host(pid, "pids.max") == "20"
    # Each round forks a long sleep (off the output pipe, so exec returns); ash gives up
    # with "can't fork" at the limit.
    loop = "i=0; while [ $i -lt 100 ]; do sleep 600 >/dev/null 2>&1 & i=$((i+1)); echo $i; done"
    proc = richc("exec", name, "--", "sh", "-c", loop, check=False)
    assert proc.returncode != 0
    assert "can't fork" in proc.stderr, proc.stderr
    started = int(proc.stdout.split()[-1])
    assert 5 < started < 20, proc.stdout
    assert int(read_host(pid, "pids.current")) <= 20
    assert counter(read_host(pid, "pids.events"), "max") >= 1


def test_ulimit_nofile_and_nproc(richc: RichcRunner, name: str) -> None:
    richc(
        "create", name, "--no-lxcfs", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=300",
        "--start",
    )  # fmt: skip
    pid = init_pid(richc, name)
    host_limits = Path(f"/proc/{pid}/limits").read_text()
    assert re.search(r"Max open files\s+1024\s+2048", host_limits), host_limits
    assert re.search(r"Max processes\s+300\s+300", host_limits), host_limits
    soft_hard = richc("exec", name, "--", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u").stdout
    assert soft_hard.split() == ["1024", "2048", "300"]
    inside_init = richc("exec", name, "--", "cat", "/proc/1/limits").stdout
    assert re.search(r"Max open files\s+1024\s+2048", inside_init)


def host_io_weight_file(version: int) -> str | None:
    """The IO weight file this kernel gives a cgroup: BFQ's, else CFQ's (v1) or iocost's (v2).

    BFQ registers its cgroup files when the scheduler is built in or loaded, and then every
    disk lists it, whether or not it is the disk's active scheduler.
    """
    schedulers = " ".join(path.read_text() for path in Path("/sys/block").glob("*/queue/scheduler"))
    if "bfq" in schedulers or Path("/sys/module/bfq").exists():
        return "blkio.bfq.weight" if version == 1 else "io.bfq.weight"
    if version == 1 and any(CGROUP_ROOT.glob("blkio/*/blkio.weight")):
        return "blkio.weight"
    if version == 2 and (CGROUP_ROOT / "io.cost.qos").exists():
        return "io.weight"
    return None


def weight_value(text: str) -> str:
    """A weight file's default weight: v1 prints ``300``, v2 ``default 300`` (then devices)."""
    first = text.splitlines()[0].split()
    return first[-1]


@pytest.mark.parametrize(
    ("cpu_flag", "shares", "weight"),
    [
        (["--cpu-shares", "512"], "512", "20"),  # 512 shares on the v2 scale is 20
        (["--cpu-weight", "20"], "500", "20"),  # and back: weight 20 is 500 shares
    ],
    ids=["cpu-shares", "cpu-weight"],
)
def test_every_limit_reaches_its_cgroup_file(
    richc: RichcRunner, name: str, cpu_flag: list[str], shares: str, weight: str
) -> None:
    version = cgroup_version()
    args = ["--memory", "64M", "--memory-reservation", "32M", *cpu_flag,
            "--pids", "40", "--cpus", "0.25"]  # fmt: skip
    if version == 1:
        args += ["--memory-swap", "128M"]
    io_file = host_io_weight_file(version)
    if io_file is not None:
        args += ["--io-weight", "300"]
    richc("create", name, "--no-lxcfs", *args, "--start")
    pid = init_pid(richc, name)
    if version == 1:
        expected = {
            "memory.limit_in_bytes": str(64 * M),
            "memory.memsw.limit_in_bytes": str(128 * M),
            "memory.soft_limit_in_bytes": str(32 * M),
            "cpu.shares": shares,
            "cpu.cfs_quota_us": "25000",
            "pids.max": "40",
        }
    else:
        expected = {
            "memory.max": str(64 * M),
            "memory.low": str(32 * M),
            "cpu.weight": weight,
            "cpu.max": "25000 100000",
            "pids.max": "40",
        }
    assert {f: read_host(pid, f) for f in expected} == expected
    if io_file is not None:
        assert weight_value(read_host(pid, io_file)) == "300", io_file
    limits = inspect(richc, name)["limits"]
    assert limits["memory_reservation_bytes"] == 32 * M
    key = cpu_flag[0].removeprefix("--").replace("-", "_")
    assert limits[key] == int(cpu_flag[1])
    if io_file is not None:
        assert limits["io_weight"] == 300


def test_device_throttles_reach_the_host_files(richc: RichcRunner, name: str) -> None:
    disks = [d for d in Path("/sys/block").iterdir() if not (d / "partition").exists()]
    disk = next((d for d in disks if d.name.startswith(("vd", "sd", "nvme"))), None)
    if disk is None:
        pytest.skip("no whole disk to throttle")
    number = (disk / "dev").read_text().strip()
    richc(
        "create", name, "--no-lxcfs", "--device-read-bps", f"{number}:10M",
        "--device-write-bps", f"{number}:20M", "--device-read-iops", f"{number}:300",
        "--device-write-iops", f"{number}:400", "--start",
    )  # fmt: skip
    pid = init_pid(richc, name)
    if cgroup_version() == 1:
        assert {
            f"blkio.throttle.{what}_device": read_host(pid, f"blkio.throttle.{what}_device")
            for what in ("read_bps", "write_bps", "read_iops", "write_iops")
        } == {
            "blkio.throttle.read_bps_device": f"{number} {10 * M}",
            "blkio.throttle.write_bps_device": f"{number} {20 * M}",
            "blkio.throttle.read_iops_device": f"{number} 300",
            "blkio.throttle.write_iops_device": f"{number} 400",
        }
    else:
        line = next(
            (x for x in read_host(pid, "io.max").splitlines() if x.startswith(f"{number} ")), ""
        )
        assert line.split() == [number, f"rbps={10 * M}", f"wbps={20 * M}", "riops=300",
                                "wiops=400"], line  # fmt: skip


def whole_disk_of(path: Path) -> str | None:
    """MAJOR:MINOR of the disk holding *path* (a partition's parent), None off a disk."""
    dev = path.stat().st_dev
    sysfs = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if os.major(dev) == 0 or not sysfs.exists():
        return None  # tmpfs, overlayfs, btrfs subvolumes: no block device of their own
    if (sysfs / "partition").exists():
        sysfs = sysfs.resolve().parent
    return (sysfs / "dev").read_text().strip()


def test_device_write_bps_slows_direct_writes(
    richc: RichcRunner, richc_root: Path, name: str
) -> None:
    disk = whole_disk_of(richc_root)
    if disk is None:
        pytest.skip("the container rootfs would not be on a block device")
    richc("create", name, "--no-lxcfs", "--device-write-bps", f"{disk}:1M", "--start")
    # 4 MiB of O_DIRECT writes (past the page cache, so the throttle sees them) take about
    # 4 s at 1 MiB/s and well under 1 s unthrottled. Only a lower bound: a busy host is slower.
    started = time.monotonic()
    richc("exec", name, "--", "dd", "if=/dev/zero", "of=/io", "bs=256k", "count=16",
          "oflag=direct")  # fmt: skip
    elapsed = time.monotonic() - started
    assert elapsed >= 2.5, f"4 MiB written in {elapsed:.2f} s under a 1 MiB/s throttle"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--memory", "4M"], "limits.memory: '4M': below the 6 MiB minimum"),
        (["--cpus", "0.001"], "limits.cpus: 0.001: a CPU quota below 1 ms"),
        (["--cpus", "4096"], "more than the host's"),
        (["--cpuset", "4095"], "names CPUs the host does not have online: 4095"),
        (["--memory", "64M", "--memory-swap", "32M"], "limits.memory_swap: '32M': below"),
        (["--pids", "0"], "limits.pids: '0': must be greater than zero"),
        (["--ulimit", "nofile=2048:1024"], "soft limit is above the hard limit"),
    ],
)
def test_invalid_limits_are_refused_before_anything_is_made(
    richc: RichcRunner, richc_root: Path, name: str, flags: list[str], words: str
) -> None:
    proc = richc("create", name, *flags, check=False)
    assert proc.returncode == 1
    assert words in proc.stderr, proc.stderr
    assert "hint:" in proc.stderr or "greater than zero" in words
    assert not (richc_root / "var/lib/richc/containers" / name).exists()
