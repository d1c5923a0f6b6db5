"""lxcfs views through the richc CLI on real containers, checked from inside them.

Every test points richc's lxcfs home at a private directory through the host config under
its --root, so the host's /var/lib/lxcfs is never touched; the conftest's richc fixture
stops that lxcfs (by its pid file) when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RICHC, RichcRunner, unique_name

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture
def lxcfs_home(richc_root: Path) -> Path:
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse: lxcfs cannot run")
    # Beside the root (below /tmp, 0711), not in pytest's 0700 tmp_path: an unprivileged
    # container's root binds the views and must be able to walk to them.
    home = richc_root.parent / "lxcfs-home"
    write_host_config(richc_root, f"lxcfs_home: {home}\n")
    return home


def write_host_config(root: Path, text: str) -> None:
    (root / "etc/richc").mkdir(parents=True, exist_ok=True)
    (root / "etc/richc/richc.yaml").write_text(text)


def inspect(richc: RichcRunner, name: str) -> dict[str, Any]:
    data = json.loads(richc("inspect", name).stdout)
    assert isinstance(data, dict)
    return data


def mem_total(richc: RichcRunner, name: str) -> str:
    line = richc("exec", name, "--", "head", "-n", "1", "/proc/meminfo").stdout
    assert line.startswith("MemTotal:"), line
    return line.split(":", 1)[1].strip()


def host_mem_total() -> str:
    return Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()


def lxcfs_status(richc: RichcRunner) -> tuple[int, dict[str, Any]]:
    proc = richc("lxcfs", "status", "--format", "json", check=False)
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return proc.returncode, data


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def set_memory(richc: RichcRunner, name: str, size: int, pid: int) -> None:
    """`richc set NAME memory=...` where it exists; the container's cgroup file otherwise."""
    proc = richc("set", name, f"memory={size}", check=False)
    if proc.returncode == 0:
        return
    assert "unknown setting" in proc.stderr, proc.stderr
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            Path(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").write_text(str(size))
            return
        if controllers == "" and Path(f"/sys/fs/cgroup{path}/memory.max").exists():
            Path(f"/sys/fs/cgroup{path}/memory.max").write_text(str(size))
            return
    pytest.fail(f"no memory cgroup for pid {pid}")


def test_views_follow_the_limits_live(richc: RichcRunner, lxcfs_home: Path, name: str) -> None:
    richc("create", name, "--memory", "512M", "--cpuset", "0")
    before = time.monotonic()  # the bound counts from `richc start`, not create
    richc("start", name)
    assert mem_total(richc, name) == "524288 kB"
    cpuinfo = richc("exec", name, "--", "cat", "/proc/cpuinfo").stdout
    assert sum(line.startswith("processor") for line in cpuinfo.splitlines()) == 1
    assert richc("exec", name, "--", "cat", "/sys/devices/system/cpu/online").stdout == "0\n"
    uptime = float(richc("exec", name, "--", "cat", "/proc/uptime").stdout.split()[0])
    assert uptime <= time.monotonic() - before + 2, uptime
    info = inspect(richc, name)
    assert info["lxcfs"] == {"enabled": True, "healthy": True}
    # Every view the host's lxcfs offers is an lxcfs mount as the container itself sees it
    # (runc refuses /proc mounts beyond lxcfs's classic files, so no pressure views there).
    offered = set(lxcfs_status(richc)[1]["host"]["views"])
    if info["runtime"] == "runc":
        offered = {v for v in offered if not v.startswith("/proc/pressure/")}
    inside = richc("exec", name, "--", "cat", "/proc/self/mountinfo").stdout.splitlines()
    lxcfs_targets = {f.split()[4] for f in inside if " - fuse.lxcfs " in f}
    assert "/proc/meminfo" in offered and lxcfs_targets == offered

    set_memory(richc, name, 1024 * MiB, info["pid"])
    assert mem_total(richc, name) == "1048576 kB"
    assert inspect(richc, name)["pid"] == info["pid"]  # no restart


def test_no_lxcfs_container_sees_the_host(richc: RichcRunner, lxcfs_home: Path, name: str) -> None:
    richc("create", name, "--memory", "256M", "--no-lxcfs", "--start")
    assert mem_total(richc, name) == host_mem_total()
    assert inspect(richc, name)["lxcfs"] == {"enabled": False, "healthy": None}
    code, status = lxcfs_status(richc)
    assert code == 0 and status["containers"] == []


def test_host_default_off_in_richc_yaml_and_the_flag_wins(
    richc: RichcRunner, lxcfs_home: Path, richc_root: Path
) -> None:
    write_host_config(richc_root, f"lxcfs_home: {lxcfs_home}\nlxcfs: false\n")
    plain, flagged = unique_name(), unique_name()
    richc("create", plain, "--memory", "256M", "--start")
    richc("create", flagged, "--memory", "256M", "--lxcfs", "--start")
    assert mem_total(richc, plain) == host_mem_total()
    assert inspect(richc, plain)["lxcfs"] == {"enabled": False, "healthy": None}
    assert mem_total(richc, flagged) == "262144 kB"
    assert inspect(richc, flagged)["lxcfs"] == {"enabled": True, "healthy": True}


@pytest.mark.parametrize("start_first", [False, True], ids=["remount-restarts", "start-then-names"])
def test_sigkilled_lxcfs_is_recovered_by_remount_without_restarts(
    richc: RichcRunner, lxcfs_home: Path, start_first: bool
) -> None:
    """The issue's recovery story, both ways: `remount` restarts the dead lxcfs itself, or
    the operator runs `richc lxcfs start` first and then `remount NAME1 NAME2`."""
    names = [unique_name(), unique_name()]
    sizes = {names[0]: ("256M", "262144 kB"), names[1]: ("512M", "524288 kB")}
    for n in names:
        richc("create", n, "--memory", sizes[n][0], "--start")
        assert mem_total(richc, n) == sizes[n][1]
    inits = {n: inspect(richc, n)["pid"] for n in names}
    code, status = lxcfs_status(richc)
    assert code == 0 and status["host"]["home"] == str(lxcfs_home)
    lxcfs_pid = status["host"]["pid"]
    assert isinstance(lxcfs_pid, int)

    os.kill(lxcfs_pid, signal.SIGKILL)
    assert eventually(lambda: lxcfs_status(richc)[1]["host"]["state"] == "dead")
    for n in names:
        broken = richc("exec", n, "--", "cat", "/proc/meminfo", check=False)
        assert broken.returncode != 0
        assert "Transport endpoint is not connected" in broken.stderr
        assert inspect(richc, n)["lxcfs"]["healthy"] is False
    code, status = lxcfs_status(richc)
    assert code == 1 and not any(c["healthy"] for c in status["containers"])

    if start_first:
        started = richc("lxcfs", "start").stderr
        assert started.startswith(f"lxcfs started on {lxcfs_home} (pid "), started
        new_pid = int(started.rsplit("(pid ", 1)[1].split(")")[0])
        assert new_pid != lxcfs_pid
        # The views stay dead until remount: starting lxcfs alone repairs nothing inside.
        broken = richc("exec", names[0], "--", "cat", "/proc/meminfo", check=False)
        assert "Transport endpoint is not connected" in broken.stderr
        result = json.loads(richc("lxcfs", "remount", *names, "--format", "json").stdout)
        assert result["host"] == {"home": str(lxcfs_home), "pid": new_pid, "restarted": False}
        table = richc("lxcfs", "remount", *names)
        assert "lxcfs restarted" not in table.stderr
    else:
        result = json.loads(richc("lxcfs", "remount", "--format", "json").stdout)
        assert result["host"]["restarted"] and result["host"]["pid"] != lxcfs_pid
    assert sorted(c["name"] for c in result["containers"]) == sorted(names)
    assert all(c["ok"] for c in result["containers"]), result

    def all_correct() -> bool:
        return all(
            richc("exec", n, "--", "head", "-n", "1", "/proc/meminfo", check=False)
            .stdout.split(":", 1)[-1]
            .strip()
            == sizes[n][1]
            for n in names
        )

    assert eventually(all_correct, timeout=5.0)
    for n in names:
        assert inspect(richc, n)["pid"] == inits[n]
        assert richc("exec", n, "--", "cat", "/proc/1/comm").stdout.strip() == "init"
        assert inspect(richc, n)["lxcfs"]["healthy"] is True
    assert lxcfs_status(richc)[0] == 0


def test_watch_recovers_by_itself(richc: RichcRunner, lxcfs_home: Path, richc_root: Path) -> None:
    name = unique_name()
    richc("create", name, "--memory", "256M", "--start")
    lxcfs_pid = lxcfs_status(richc)[1]["host"]["pid"]
    watcher = subprocess.Popen(
        [str(RICHC), "lxcfs", "watch", "--interval", "0.2"],
        env=dict(os.environ, RICHC_ROOT=str(richc_root)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        os.kill(lxcfs_pid, signal.SIGKILL)

        def healed() -> bool:
            out = richc("exec", name, "--", "head", "-n", "1", "/proc/meminfo", check=False)
            return out.returncode == 0 and "262144 kB" in out.stdout

        assert eventually(healed, timeout=10.0)
        assert lxcfs_status(richc)[1]["host"]["pid"] != lxcfs_pid
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    assert "views re-attached" in err


def test_unavailable_lxcfs_warns_unless_required(
    richc: RichcRunner, richc_root: Path, tmp_path: Path, name: str
) -> None:
    # An lxcfs flag this version rejects: lxcfs exits at once, as it would on a broken host.
    home = tmp_path / "broken-home"
    write_host_config(richc_root, f"lxcfs_home: {home}\nlxcfs_options: [--no-such-flag]\n")
    started = richc("create", name, "--memory", "256M", "--start")
    assert "warning: lxcfs is unavailable" in started.stderr
    assert mem_total(richc, name) == host_mem_total()
    assert inspect(richc, name)["lxcfs"] == {"enabled": True, "healthy": False}
    richc("stop", name, "--kill")

    write_host_config(
        richc_root,
        f"lxcfs_home: {home}\nlxcfs_options: [--no-such-flag]\nlxcfs_required: true\n",
    )
    refused = richc("start", name, check=False)
    assert refused.returncode == 1
    assert f"{name} needs lxcfs views" in refused.stderr and "hint:" in refused.stderr
    assert inspect(richc, name)["state"] == "stopped"


def test_removing_the_last_container_stops_the_lxcfs_richc_started(
    richc: RichcRunner, lxcfs_home: Path
) -> None:
    first, second = unique_name(), unique_name()
    for n in (first, second):
        richc("create", n, "--start")
    lxcfs_pid = lxcfs_status(richc)[1]["host"]["pid"]
    assert isinstance(lxcfs_pid, int)
    richc("rm", "--force", first)
    assert lxcfs_status(richc)[1]["host"]["pid"] == lxcfs_pid  # still needed by the second
    richc("rm", "--force", second)
    _, status = lxcfs_status(richc)
    assert status["host"]["state"] == "absent"
    assert not Path(f"/proc/{lxcfs_pid}/cmdline").exists() or (
        str(lxcfs_home) not in Path(f"/proc/{lxcfs_pid}/cmdline").read_text()
    )
