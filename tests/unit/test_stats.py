"""Stats and cgroup location from recorded /proc and cgroup files (no containers)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from richc import cgroups, stats

ROOT = Path(__file__).resolve().parents[2]

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 40 0:37 /lxc.payload.x /mnt/bound rw,relatime - cgroup cgroup rw,memory
"""

SYSTEMD_INIT_CGROUP = """\
9:name=systemd:/lxc.payload.web/init.scope
4:memory:/lxc.payload.web
2:cpu,cpuacct:/lxc.payload.web
3:cpuset:/lxc.payload.web
8:pids:/lxc.payload.web/init.scope
0::/lxc.payload.web/init.scope
"""


def test_mountinfo_maps_controllers_to_hierarchies() -> None:
    mounts = cgroups.parse_mountinfo(HYBRID_MOUNTINFO)
    assert mounts.v1 == {
        "cpu": Path("/sys/fs/cgroup/cpu,cpuacct"),
        "cpuacct": Path("/sys/fs/cgroup/cpu,cpuacct"),
        "cpuset": Path("/sys/fs/cgroup/cpuset"),
        "memory": Path("/sys/fs/cgroup/memory"),
        "pids": Path("/sys/fs/cgroup/pids"),
    }
    assert mounts.v2 == Path("/sys/fs/cgroup/unified")


def test_container_path_walks_up_to_the_runtime_scope() -> None:
    assert cgroups.container_path("/lxc.payload.web/init.scope", "lxc.payload.web") == (
        "/lxc.payload.web"
    )
    assert cgroups.container_path("/machine/runc-web/init.scope", None) == "/machine/runc-web"
    assert cgroups.container_path("/runc-web", "lxc.payload.other") == "/runc-web"


def test_locate_on_hybrid_and_v2(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42/cgroup").write_text(SYSTEMD_INIT_CGROUP)
    mounts = cgroups.parse_mountinfo(HYBRID_MOUNTINFO)
    group = cgroups.locate(42, version=1, name="web", mounts=mounts, proc=tmp_path)
    assert group.path("memory.limit_in_bytes") == Path(
        "/sys/fs/cgroup/memory/lxc.payload.web/memory.limit_in_bytes"
    )
    assert group.path("pids.max") == Path("/sys/fs/cgroup/pids/lxc.payload.web/pids.max")
    assert group.path("cpuacct.usage").parent == Path("/sys/fs/cgroup/cpu,cpuacct/lxc.payload.web")
    v2 = cgroups.locate(42, version=2, name="web", mounts=mounts, proc=tmp_path)
    assert v2.path("memory.max") == Path("/sys/fs/cgroup/unified/lxc.payload.web/memory.max")


def _files(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


NET_DEV = """\
Inter-| Receive | Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets ...
 lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0
 eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0
 eth1: 24 1 0 0 0 0 0 0 16 1 0 0 0 0 0 0
"""


def test_net_dev_sums_all_but_loopback() -> None:
    assert stats.parse_net_dev(NET_DEV) == (1024, 2016)
    only_lo = "\n".join(NET_DEV.splitlines()[:3])
    assert stats.parse_net_dev(only_lo) == (None, None)


def test_read_v1(tmp_path: Path) -> None:
    cg = tmp_path / "cg"
    _files(
        cg,
        {
            "cpuacct.usage": "2500000000\n",
            "memory.usage_in_bytes": str(50 << 20),
            "memory.stat": f"cache 100\ntotal_inactive_file {10 << 20}\n",
            "memory.limit_in_bytes": str(64 << 20),
            "cpu.cfs_quota_us": "50000",
            "cpu.cfs_period_us": "100000",
            "pids.current": "7\n",
            "pids.max": "max\n",
            "blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 8192\n"
            "8:0 Sync 0\n8:16 Read 4096\nTotal 16384\n",
        },
    )
    _files(tmp_path / "proc/9/net", {"dev": NET_DEV})
    group = cgroups.ContainerCgroup(
        1, {c: cg for c in ("cpuacct", "memory", "cpu", "pids", "blkio")}
    )
    reading = stats.read(group, 9, proc=tmp_path / "proc")
    assert reading.cpu_ns == 2_500_000_000
    assert reading.memory_used == 40 << 20
    assert reading.memory_limit == 64 << 20
    assert reading.cpu_quota == 0.5
    assert (reading.pids, reading.pids_limit) == (7, None)
    assert (reading.read_bytes, reading.write_bytes) == (8192, 8192)
    assert (reading.rx_bytes, reading.tx_bytes) == (1024, 2016)


def test_read_v2_and_unlimited(tmp_path: Path) -> None:
    cg = tmp_path / "cg"
    _files(
        cg,
        {
            "cpu.stat": "usage_usec 1500000\nuser_usec 1000000\n",
            "memory.current": str(30 << 20),
            "memory.stat": f"anon 1\ninactive_file {2 << 20}\n",
            "memory.max": "max\n",
            "cpu.max": "max 100000\n",
            "pids.current": "3",
            "pids.max": "20",
            "io.stat": "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n",
        },
    )
    group = cgroups.ContainerCgroup(2, {}, unified=cg)
    reading = stats.read(group, 999999, proc=tmp_path / "proc")
    assert reading.cpu_ns == 1_500_000_000
    assert reading.memory_used == 28 << 20
    assert reading.memory_limit is None and reading.cpu_quota is None
    assert (reading.pids, reading.pids_limit) == (3, 20)
    assert (reading.read_bytes, reading.write_bytes) == (101, 202)
    assert reading.rx_bytes is None  # no such pid: network unknown


def test_host_network_reports_no_traffic_of_its_own(tmp_path: Path) -> None:
    # The ns/net links of /proc compare by inode; hard links stand in for a shared one.
    proc = tmp_path / "proc"
    _files(proc / "self/ns", {"net": ""})
    _files(proc / "1/ns", {"net": ""})
    for pid in ("9", "10"):
        _files(proc / pid / "net", {"dev": NET_DEV})
        (proc / pid / "ns").mkdir()
    (proc / "9/ns/net").hardlink_to(proc / "self/ns/net")  # --net host
    (proc / "10/ns/net").write_text("")  # a namespace of its own
    group = cgroups.ContainerCgroup(1, {})
    assert stats.shares_host_network(9, proc) and not stats.shares_host_network(10, proc)
    host = stats.read(group, 9, proc=proc)
    assert (host.rx_bytes, host.tx_bytes) == (None, None)
    own = stats.read(group, 10, proc=proc)
    assert (own.rx_bytes, own.tx_bytes) == (1024, 2016)


def test_the_real_host_network_is_recognised() -> None:
    assert stats.shares_host_network(os.getpid())


def _reading(at: float, cpu_ns: int) -> stats.Reading:
    return stats.Reading(at, cpu_ns, 1 << 20, 2 << 20, None, 1, None, 0, 0, None, None)


def test_cpu_percent_is_of_one_cpu() -> None:
    assert stats.cpu_percent(_reading(10.0, 0), _reading(10.5, 750_000_000)) == 150.0
    assert stats.cpu_percent(_reading(10.0, 0), _reading(10.0, 5)) is None


def _doc_keys() -> set[str]:
    text = (ROOT / "docs/cli-json.md").read_text()
    section = text.split("## richc stats --format json", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_.]+)` \|", section, re.M))


def _flat_keys(data: dict[str, object], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _flat_keys(value, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out


@pytest.mark.parametrize("running", [True, False])
def test_json_matches_the_documented_fields(running: bool) -> None:
    reading = _reading(1.0, 5) if running else None
    item = stats.to_json("c1", "running" if running else "stopped", 5, reading, None)
    assert _flat_keys(item) == _doc_keys()
    if running:
        assert item["memory"] == {"used_bytes": 1 << 20, "limit_bytes": 2 << 20, "percent": 50.0}
