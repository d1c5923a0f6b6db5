"""Limits: parsing, validation (host-free and against injected host facts), cgroup v1/v2
files and their OCI form, and the live write plan with its rollback."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from richc import config as cfg
from richc import hostfacts, livewrites
from richc.config import limits as climits
from richc.errors import ConfigError
from richc.runtime.oci_config import render_config
from richc.spec import HostFacts, Paths, build_spec, cgroupfiles

M = 1 << 20


def parse(**limits: Any) -> cfg.Limits:
    return cfg.from_dict({"name": "c1", "limits": limits}).limits


HOST = hostfacts.HostLimits(
    cgroup_version=1,
    online_cpus=(0, 1, 2, 3),
    controllers=("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio"),
    swap_accounting=True,
    io_weight_file="blkio.bfq.weight",
)


@pytest.mark.parametrize(
    ("limits", "key", "words"),
    [
        ({"memory": "4M"}, "limits.memory", "below the 6 MiB minimum"),
        ({"memory": "0"}, "limits.memory", "greater than zero"),
        ({"memory": "-1G"}, "limits.memory", "not a size"),
        ({"cpus": "0.005"}, "limits.cpus", "below 1 ms"),
        ({"cpus": "0"}, "limits.cpus", "positive number"),
        ({"cpus": "-2"}, "limits.cpus", "positive number"),
        ({"pids": "0"}, "limits.pids", "greater than zero"),
        ({"pids": "-3"}, "limits.pids", "greater than zero"),
        ({"memory": "64M", "memory_swap": "32M"}, "limits.memory_swap", "below the memory"),
        ({"memory_swap": "64M"}, "limits.memory_swap", "needs a memory limit"),
        ({"memory": "64M", "memory_reservation": "128M"}, "limits.memory_reservation", "above"),
        ({"memory_reservation": "1M"}, "limits.memory_reservation", "6 MiB"),
        ({"cpu_shares": 512, "cpu_weight": 50}, "limits.cpu_weight", "not both"),
        ({"cpu_shares": 1}, "limits.cpu_shares", "out of range 2 to 262144"),
        ({"cpu_weight": 10001}, "limits.cpu_weight", "out of range 1 to 10000"),
        ({"io_weight": 5}, "limits.io_weight", "out of range 10 to 1000"),
        ({"cpuset": "2-1"}, "limits.cpuset", "not a CPU list"),
        ({"device_read_bps": ["sda:1M"]}, "limits.device_read_bps", "not a block device"),
        ({"device_read_bps": ["/dev/sda"]}, "limits.device_read_bps", "DEVICE:RATE"),
        ({"device_write_iops": {"8:0": 0}}, "limits.device_write_iops.8:0", "greater than"),
        ({"ulimits": {"nofile": "10:5"}}, "limits.ulimits.nofile", "soft limit is above"),
        ({"ulimits": {"files": 5}}, "limits.ulimits", "unknown resource limit"),
        ({"ulimits": {"nofile": "lots"}}, "limits.ulimits.nofile", "whole number"),
        ({"swap": "1G"}, "limits.swap", "unknown limit"),
    ],
)
def test_bad_limits_name_key_and_value(limits: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(**limits)
    assert info.value.key == key, str(info.value)
    assert words in str(info.value)


def test_errors_show_sizes_as_typed_and_hint() -> None:
    with pytest.raises(ConfigError) as info:
        parse(memory="4M")
    assert str(info.value) == "limits.memory: '4M': below the 6 MiB minimum a container needs"
    assert info.value.hint == "use at least --memory 6M"


def test_every_limit_parses_and_round_trips_through_config_yaml() -> None:
    limits = parse(
        memory="512M",
        memory_swap="1G",
        memory_reservation="256M",
        cpus=1.5,
        cpu_weight=200,
        cpuset="0,2-3",
        pids=100,
        io_weight=300,
        device_read_bps={"8:0": "10M"},
        device_write_bps=["8:16:1M", "8:0:2M"],
        device_read_iops=["8:0:100"],
        device_write_iops={"8:0": 50},
        ulimits={"nofile": "1024:2048", "nproc": 512, "core": [0, "unlimited"]},
    )
    assert limits.memory == 512 * M and limits.memory_swap == 1024 * M
    assert limits.device_write_bps == (("8:0", 2 * M), ("8:16", M))
    assert limits.ulimits == (
        ("core", 0, climits.RLIM_INFINITY),
        ("nofile", 1024, 2048),
        ("nproc", 512, 512),
    )
    again = cfg.from_dict({"name": "c1", "limits": limits.to_dict()}).limits
    assert again == limits
    assert limits.to_dict()["ulimits"]["core"] == "0:unlimited"


def test_ulimit_flags() -> None:
    assert climits.parse_ulimit_flags(["nofile=1024:2048", "nproc=10"]) == {
        "nofile": "1024:2048",
        "nproc": "10",
    }
    with pytest.raises(ConfigError):
        climits.parse_ulimit_flags(["nofile"])


@pytest.mark.parametrize(
    ("limits", "key", "words", "hint"),
    [
        ({"cpus": 5}, "limits.cpus", "more than the host's 4 CPUs", "at most --cpus 4"),
        ({"cpuset": "2-5"}, "limits.cpuset", "online: 4-5", "the host's CPUs are 0-3"),
        ({"cpuset": "7"}, "limits.cpuset", "online: 7", "0-3"),
    ],
)
def test_host_checks(limits: dict[str, Any], key: str, words: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        hostfacts.check_host(parse(**limits), HOST)
    assert info.value.key == key
    assert words in str(info.value)
    assert info.value.hint and hint in info.value.hint


def test_host_checks_accept_what_the_host_has() -> None:
    hostfacts.check_host(parse(cpus=4, cpuset="0-3", memory="1G", memory_swap="2G", pids=5), HOST)


def test_host_without_swap_accounting_io_weight_or_controller() -> None:
    bare = hostfacts.HostLimits(1, (0,), ("memory",), swap_accounting=False, io_weight_file=None)
    with pytest.raises(ConfigError, match="does not account swap"):
        hostfacts.check_host(parse(memory="64M", memory_swap="128M"), bare)
    with pytest.raises(ConfigError, match="no pids controller"):
        hostfacts.check_host(parse(pids=10), bare)
    with_blkio = hostfacts.HostLimits(1, (0,), ("blkio",), io_weight_file=None)
    with pytest.raises(ConfigError, match="no IO weight"):
        hostfacts.check_host(parse(io_weight=100), with_blkio)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_read_host_from_an_injected_tree(tmp_path: Path) -> None:
    _write(tmp_path / "sys/devices/system/cpu/online", "0-3,6\n")
    _write(
        tmp_path / "proc/self/mountinfo",
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
    )
    _write(tmp_path / "sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "max")
    _write(tmp_path / "sys/block/sda/queue/scheduler", "[none] mq-deadline bfq\n")
    host = hostfacts.read_host(1, tmp_path)
    assert host.online_cpus == (0, 1, 2, 3, 6)
    assert host.cpu_count == 5
    assert set(host.controllers) == {"cpu", "cpuacct", "memory"}
    assert host.swap_accounting is True
    assert host.io_weight_file == "blkio.bfq.weight"
    with pytest.raises(ConfigError, match="online: 4-5"):
        hostfacts.check_host(parse(cpuset="4-6"), host)


def test_read_host_v2(tmp_path: Path) -> None:
    _write(tmp_path / "sys/devices/system/cpu/online", "0\n")
    _write(tmp_path / "proc/self/mountinfo", "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    _write(tmp_path / "sys/fs/cgroup/cgroup.subtree_control", "cpu io memory pids\n")
    _write(tmp_path / "sys/fs/cgroup/init.scope/memory.swap.max", "max\n")
    host = hostfacts.read_host(2, tmp_path)
    assert host.controllers == ("cpu", "io", "memory", "pids")
    assert host.swap_accounting is True
    assert host.io_weight_file is None
    with pytest.raises(ConfigError, match="no cpuset controller"):
        hostfacts.check_host(parse(cpuset="0"), host)


ALL = {
    "memory": "512M",
    "memory_swap": "1G",
    "memory_reservation": "256M",
    "cpus": 1.5,
    "cpu_shares": 512,
    "cpuset": "0-1",
    "pids": 100,
    "io_weight": 300,
    "device_read_bps": ["8:0:10M"],
    "device_write_iops": ["8:0:500", "8:16:100"],
}


def test_cgroup_v1_files_for_every_limit() -> None:
    assert cgroupfiles.cgroup_files(parse(**ALL), 1) == (
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "150000"),
        ("cpu.shares", "512"),
        ("cpuset.cpus", "0-1"),
        ("pids.max", "100"),
        ("blkio.bfq.weight", "300"),
        ("blkio.throttle.read_bps_device", f"8:0 {10 * M}"),
        ("blkio.throttle.write_iops_device", "8:0 500"),
        ("blkio.throttle.write_iops_device", "8:16 100"),
        ("memory.limit_in_bytes", str(512 * M)),
        ("memory.memsw.limit_in_bytes", str(1024 * M)),
        ("memory.soft_limit_in_bytes", str(256 * M)),
    )


def test_cgroup_v2_files_for_every_limit() -> None:
    assert cgroupfiles.cgroup_files(parse(**ALL), 2, io_weight_file="io.weight") == (
        ("cpu.max", "150000 100000"),
        ("cpu.weight", str(cgroupfiles.shares_to_weight(512))),
        ("cpuset.cpus", "0-1"),
        ("pids.max", "100"),
        ("io.weight", "300"),
        ("io.max", f"8:0 rbps={10 * M} wiops=500"),
        ("io.max", "8:16 wiops=100"),
        ("memory.max", str(512 * M)),
        ("memory.swap.max", str(512 * M)),  # v2 limits swap alone: memory+swap - memory
        ("memory.low", str(256 * M)),
    )


def test_shares_and_weight_convert_both_ways() -> None:
    assert cgroupfiles.shares_to_weight(2) == 1
    assert cgroupfiles.shares_to_weight(262144) == 10000
    assert cgroupfiles.shares_to_weight(1024) == 39  # the value runc and systemd use
    assert cgroupfiles.weight_to_shares(1) == 2
    assert cgroupfiles.weight_to_shares(10000) == 262144
    assert ("cpu.shares", str(cgroupfiles.weight_to_shares(200))) in cgroupfiles.cgroup_files(
        parse(cpu_weight=200), 1
    )


def test_spec_carries_cgroup_settings_and_rlimits() -> None:
    config = cfg.from_dict(
        {"name": "c1", "limits": {"memory": "64M", "ulimits": {"nofile": "1024:2048"}}}
    )
    paths = Paths(Path("/r"), Path("/l"))
    spec = build_spec(config, cfg.Init.busybox, paths, HostFacts(cgroup_version=2))
    assert cgroupfiles.cgroup_files(spec.limits, 2) == (("memory.max", str(64 * M)),)
    assert spec.rlimits == (("nofile", 1024, 2048),)
    spec1 = build_spec(config, cfg.Init.busybox, paths, HostFacts(cgroup_version=1))
    assert cgroupfiles.cgroup_files(spec1.limits, 1) == (("memory.limit_in_bytes", str(64 * M)),)


def test_every_limit_reaches_the_oci_bundle() -> None:
    # Through the spec's cgroup files and rlimits, as the runc runtime renders config.json.
    config = cfg.from_dict({"name": "c1", "limits": {**ALL, "ulimits": {"nofile": "1024:2048"}}})
    paths = Paths(Path("/r"), Path("/l"))
    spec = build_spec(config, cfg.Init.busybox, paths, HostFacts(cgroup_version=1))
    bundle = render_config(spec, cgroups_path="/richc.payload.c1")
    resources = bundle["linux"]["resources"]
    del resources["devices"]
    assert resources == {
        "memory": {"limit": 512 * M, "swap": 1024 * M, "reservation": 256 * M},
        "cpu": {"quota": 150000, "period": 100000, "shares": 512, "cpus": "0-1"},
        "pids": {"limit": 100},
        "blockIO": {
            "weight": 300,
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 10 * M}],
            "throttleWriteIOPSDevice": [
                {"major": 8, "minor": 0, "rate": 500},
                {"major": 8, "minor": 16, "rate": 100},
            ],
        },
    }
    assert bundle["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}]


class FakeCgroup:
    """Files in a dict; a write to *fail_on* fails with EBUSY like a memory limit below use."""

    def __init__(self, files: dict[str, str], fail_on: str | None = None) -> None:
        self.files = dict(files)
        self.fail_on = fail_on
        self.log: list[tuple[str, str]] = []

    def read(self, name: str) -> str:
        return self.files[name]

    def write(self, name: str, value: str) -> None:
        self.log.append((name, value))
        if name == self.fail_on:
            raise OSError(errno.EBUSY, "Device or resource busy", f"/cg/{name}")
        if name.startswith("blkio.throttle."):
            device = value.split()[0]
            lines = [ln for ln in self.files[name].splitlines() if not ln.startswith(device)]
            if not value.endswith(" 0"):
                lines.append(value)
            self.files[name] = "\n".join(lines)
        else:
            self.files[name] = value


V1_FILES = {
    "memory.limit_in_bytes": str(64 * M),
    "memory.memsw.limit_in_bytes": str(128 * M),
    "memory.soft_limit_in_bytes": "9223372036854771712",
    "pids.max": "50",
    "cpu.cfs_quota_us": "50000",
    "cpu.cfs_period_us": "100000",
    "cpuset.cpus": "0",
    "blkio.throttle.read_bps_device": "8:0 1048576",
}


def test_live_plan_writes_only_changes_and_lifts_removed_limits() -> None:
    old = parse(memory="64M", memory_swap="128M", cpus=0.5, pids=50, device_read_bps=["8:0:1M"])
    new = parse(memory="64M", memory_swap="128M", pids=80)
    group = FakeCgroup(V1_FILES)
    writes = livewrites.plan_writes(old, new, 1, group.read)
    assert [(w.filename, w.value) for w in writes] == [
        ("pids.max", "80"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "-1"),
        ("blkio.throttle.read_bps_device", "8:0 0"),
    ]
    assert writes[0].undo == "50"
    assert writes[3].undo == "8:0 1048576"


def test_v1_memory_and_swap_rise_swap_first_and_fall_memory_first() -> None:
    old = parse(memory="64M", memory_swap="128M")
    group = FakeCgroup(V1_FILES)
    rising = livewrites.plan_writes(old, parse(memory="256M", memory_swap="512M"), 1, group.read)
    assert [w.filename for w in rising] == [
        "memory.memsw.limit_in_bytes",
        "memory.limit_in_bytes",
    ]
    falling = livewrites.plan_writes(old, parse(memory="32M", memory_swap="64M"), 1, group.read)
    assert [w.filename for w in falling] == [
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
    ]


def test_a_failed_write_undoes_the_earlier_ones() -> None:
    old = parse(memory="64M", pids=50, cpuset="0")
    new = parse(memory="16M", pids=80, cpuset="0-1")
    group = FakeCgroup(V1_FILES, fail_on="memory.limit_in_bytes")
    writes = livewrites.plan_writes(old, new, 1, group.read)
    with pytest.raises(livewrites.LiveApplyError) as info:
        livewrites.apply_writes(writes, group.write)
    assert group.files == V1_FILES
    assert "Device or resource busy" in str(info.value)
    assert "nothing was changed" in str(info.value)
    assert info.value.hint and "uses more memory" in info.value.hint
    # cpuset and pids went first (memory last), and are undone in reverse.
    assert group.log == [
        ("cpuset.cpus", "0-1"),
        ("pids.max", "80"),
        ("memory.limit_in_bytes", str(16 * M)),
        ("pids.max", "50"),
        ("cpuset.cpus", "0"),
    ]


def test_v2_plan_resets_io_max_per_device() -> None:
    old = parse(device_read_bps=["8:0:1M"], memory="64M")
    new = parse(memory="64M")
    group = FakeCgroup({"io.max": "8:0 rbps=1048576 wbps=max riops=max wiops=max"})
    writes = livewrites.plan_writes(old, new, 2, group.read)
    assert [(w.filename, w.value) for w in writes] == [
        ("io.max", "8:0 rbps=max wbps=max riops=max wiops=max")
    ]
    assert writes[0].undo == "8:0 rbps=1048576 wbps=max riops=max wiops=max"
