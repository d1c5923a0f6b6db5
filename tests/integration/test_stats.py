"""`richc stats` and list's usage columns on real containers: the figures follow what the
container does (memory it fills, CPU it burns, direct IO it makes) and the limits in force."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RICHC, RichcRunner, unique_name
from tests.integration.test_limits import M, init_pid, inspect

pytestmark = pytest.mark.integration


def stats(richc: RichcRunner, *args: str) -> list[dict[str, Any]]:
    data = json.loads(richc("stats", "--format", "json", *args).stdout)
    assert isinstance(data, list)
    return data


def one(richc: RichcRunner, name: str, *args: str) -> dict[str, Any]:
    items = stats(richc, name, *args)
    assert [i["name"] for i in items] == [name]
    return items[0]


def test_stats_json_follows_the_container(richc: RichcRunner, name: str) -> None:
    richc("create", name, "--no-lxcfs", "--net", "none", "--memory", "64M", "--cpus", "0.5",
          "--pids", "40")  # fmt: skip
    richc("start", name)
    pid = init_pid(richc, name)
    first = one(richc, name, "--interval", "0")
    assert first["state"] == "running" and first["pid"] == pid
    assert first["memory"]["limit_bytes"] == 64 * M
    assert first["cpu"]["limit_cpus"] == 0.5
    assert first["cpu"]["percent"] is None  # --interval 0: one reading
    assert first["pids"]["limit"] == 40 and first["pids"]["current"] >= 1
    assert first["net"] == {"rx_bytes": None, "tx_bytes": None}  # --net none: loopback only

    # 24 MiB in tmpfs is charged to the container's memory.
    richc("exec", name, "--", "dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=24")
    # Direct IO reaches the block layer inside the container's cgroup, where the rootfs is
    # on a disk (the VM's /tmp is tmpfs, which has neither O_DIRECT nor block IO).
    rootfs = Path(inspect(richc, name)["rootfs"])
    on_disk = os.major(rootfs.stat().st_dev) != 0
    if on_disk:
        direct = ["bs=1M", "count=4", "oflag=direct"]
        richc("exec", name, "--", "dd", "if=/dev/zero", "of=/io", *direct)
        richc("exec", name, "--", "dd", "if=/io", "of=/dev/null", "bs=1M", "iflag=direct")
    burn = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"
    richc("exec", name, "--", "sh", "-c", burn)
    after = one(richc, name, "--interval", "0")
    assert after["memory"]["used_bytes"] >= first["memory"]["used_bytes"] + 20 * M
    assert after["memory"]["percent"] > 30
    assert after["cpu"]["seconds"] > first["cpu"]["seconds"]
    if on_disk:
        assert after["io"]["write_bytes"] >= first["io"]["write_bytes"] + 4 * M
        assert after["io"]["read_bytes"] >= first["io"]["read_bytes"] + 4 * M


def interfaces(net_dev: str) -> set[str]:
    return {line.split(":")[0].strip() for line in net_dev.splitlines()[2:]}


def test_host_network_container_reports_no_traffic_of_its_own(
    richc: RichcRunner, name: str
) -> None:
    host = interfaces(Path("/proc/self/net/dev").read_text())
    if host == {"lo"}:
        pytest.skip("the host has only loopback: its traffic would be null anyway")
    richc("create", name, "--no-lxcfs", "--net", "host", "--start")
    # The container does share the host's interfaces, so /proc/PID/net/dev is the host's.
    inside = interfaces(richc("exec", name, "--", "cat", "/proc/net/dev").stdout)
    # Other jobs on the host add and remove links meanwhile: what stayed is seen inside.
    after = interfaces(Path("/proc/self/net/dev").read_text())
    assert host & after <= inside <= host | after
    item = one(richc, name, "--interval", "0")
    assert item["state"] == "running"
    assert item["net"] == {"rx_bytes": None, "tx_bytes": None}
    assert item["memory"]["used_bytes"] is not None  # only the network is unknown


def test_cpu_percent_of_a_busy_container(richc: RichcRunner, name: str) -> None:
    richc("create", name, "--no-lxcfs", "--cpus", "1", "--start")
    spin = "(while :; do :; done) >/dev/null 2>&1 & echo $!"
    spinner = richc("exec", name, "--", "sh", "-c", spin).stdout.strip()
    try:
        busy = one(richc, name, "--interval", "1")
    finally:
        richc("exec", name, "--", "kill", spinner)
    # A spinning shell under a one-CPU quota: clearly busy, never above the quota.
    assert 10 < busy["cpu"]["percent"] <= 110, busy["cpu"]


def test_stats_lists_running_ones_and_shows_named_stopped_ones(
    richc: RichcRunner, name: str
) -> None:
    stopped = unique_name()
    richc("create", name, "--no-lxcfs", "--start")
    richc("create", stopped, "--no-lxcfs")
    assert [i["name"] for i in stats(richc, "--interval", "0")] == [name]
    item = one(richc, stopped, "--interval", "0")
    assert item["state"] == "stopped" and item["pid"] is None
    assert item["memory"]["used_bytes"] is None and item["cpu"]["seconds"] is None
    assert richc("stats", "nosuch", check=False).returncode == 1
    table = richc("stats", name, stopped, "--interval", "0").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "STATE", "CPU"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows[name][1] == "running" and rows[stopped][1] == "stopped"


def test_watch_streams_json_lines_until_interrupted(
    richc: RichcRunner, richc_root: Any, name: str
) -> None:
    richc("create", name, "--no-lxcfs", "--memory", "48M", "--start")
    env = dict(os.environ, RICHC_ROOT=str(richc_root))
    watch = subprocess.Popen(
        [str(RICHC), "stats", "--watch", "--format", "json", "--interval", "0.2", name],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a suite started as a background job inherits SIGINT ignored,
        # and Python then keeps ignoring it, so Ctrl-C's signal would never arrive.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert watch.stdout is not None
        lines = [watch.stdout.readline(), watch.stdout.readline()]
    finally:
        os.kill(watch.pid, signal.SIGINT)
        _, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    for line in lines:
        (item,) = json.loads(line)
        assert item["name"] == name and item["memory"]["limit_bytes"] == 48 * M
        assert item["cpu"]["percent"] is not None


def test_list_shows_memory_and_cpu_usage(richc: RichcRunner, name: str) -> None:
    stopped = unique_name()
    richc("create", name, "--no-lxcfs", "--memory", "64M", "--start")
    richc("create", stopped, "--no-lxcfs")
    richc("exec", name, "--", "dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=8")
    listed = {i["name"]: i for i in json.loads(richc("list", "--format", "json").stdout)}
    assert listed[name]["usage"]["memory_bytes"] >= 8 * M
    assert listed[name]["usage"]["cpu_seconds"] >= 0
    assert listed[stopped]["usage"] == {"memory_bytes": None, "cpu_seconds": None}
    table = richc("list").stdout.splitlines()
    header = table[0].split()
    assert "USAGE" in header and "TIME" in header
    row = next(line for line in table if line.startswith(name))
    assert "M" in row.split()[header.index("MEM")]  # e.g. 8.4M
