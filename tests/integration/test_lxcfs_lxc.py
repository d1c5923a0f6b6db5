"""lxcfs views and recovery on real LXC containers, driven with lxc-start directly.

Each test runs its own lxcfs on a private home and its containers in a private lxcpath;
fixtures stop both by pid/name and unmount whatever is left. The CLI-level tests through
richc live in test_lxcfs_cli.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lxcfs_integration import daemon, health, remount
from lxcfs_integration.errors import LxcfsError
from lxcfs_integration.views import compute_views, render_lxc_config

pytestmark = pytest.mark.integration

BUSYBOX = Path("/bin/busybox")
MEMORY = 256 * 1024 * 1024


def _require() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in ("lxc-start", "lxcfs"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed (/bin/busybox)")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    if not Path("/sys/fs/cgroup/memory").is_dir():
        pytest.skip("these LXC configs use cgroup v1 keys; this host has no v1 memory controller")


@dataclass
class PrivateLxcfs:
    """An lxcfs on a private home; ``current`` follows restarts so cleanup stops the last one."""

    home: Path
    run_dir: Path
    current: daemon.LxcfsProcess | None = None
    started: list[int] = field(default_factory=list)

    def start(self) -> daemon.LxcfsProcess:
        self.current, _ = daemon.ensure(self.home, self.run_dir)
        assert self.current.pid is not None
        self.started.append(self.current.pid)
        return self.current


@pytest.fixture
def lxcfs(tmp_path: Path) -> Iterator[PrivateLxcfs]:
    _require()
    private = PrivateLxcfs(tmp_path / "lxcfs-home", tmp_path / "lxcfs-run")
    private.start()
    yield private
    for pid in private.started:
        if daemon.is_lxcfs_for(pid, private.home):
            os.kill(pid, signal.SIGKILL)
    daemon.unmount_dead(private.home)
    assert daemon.current(private.home) is None


def _busybox_rootfs(rootfs: Path) -> None:
    for d in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    for applet in ("sh", "cat", "head", "grep", "sleep", "ls", "true"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "sbin/init").symlink_to("../bin/busybox")
    (rootfs / "etc/inittab").write_text("::sysinit:/bin/true\n::respawn:/bin/sleep 100000\n")


@dataclass(frozen=True)
class Container:
    name: str
    lxcpath: Path
    started_at: float

    def sh(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["lxc-attach", "-n", self.name, "-P", str(self.lxcpath), "--", "/bin/sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    def init_pid(self) -> int:
        out = subprocess.run(
            ["lxc-info", "-n", self.name, "-P", str(self.lxcpath), "-pH"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(out.strip())


MakeContainer = Callable[..., Container]


@pytest.fixture
def make_container(tmp_path: Path) -> Iterator[MakeContainer]:
    _require()
    lxcpath = tmp_path / "lxcpath"
    made: list[Container] = []

    def make(home: Path, *, lxcfs_views: bool = True) -> Container:
        name = f"richc-test-{secrets.token_hex(4)}"
        cdir = lxcpath / name
        _busybox_rootfs(cdir / "rootfs")
        views = render_lxc_config(compute_views(home)) if lxcfs_views else ""
        (cdir / "config").write_text(
            f"lxc.uts.name = {name}\n"
            f"lxc.rootfs.path = dir:{cdir / 'rootfs'}\n"
            "lxc.init.cmd = /sbin/init\n"
            "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed\n"
            "lxc.autodev = 1\n"
            "lxc.net.0.type = empty\n"
            f"lxc.cgroup.memory.limit_in_bytes = {MEMORY}\n"
            "lxc.cgroup.cpuset.cpus = 0\n" + views
        )
        started_at = time.monotonic()
        subprocess.run(
            ["lxc-start", "-n", name, "-P", str(lxcpath), "-d", "-o", str(cdir / "lxc.log")],
            check=True,
            timeout=60,
        )
        container = Container(name, lxcpath, started_at)
        made.append(container)
        return container

    yield make
    for c in made:
        subprocess.run(
            ["lxc-stop", "-n", c.name, "-P", str(lxcpath), "-k"], capture_output=True, timeout=60
        )
        shutil.rmtree(lxcpath / c.name, ignore_errors=True)


def _meminfo_total(c: Container) -> str:
    return c.sh("head -n 1 /proc/meminfo").stdout.split(":", 1)[1].strip()


def test_views_show_the_container_limits(
    lxcfs: PrivateLxcfs, make_container: MakeContainer
) -> None:
    c = make_container(lxcfs.home)
    assert _meminfo_total(c) == "262144 kB"
    assert c.sh("grep -c ^processor /proc/cpuinfo").stdout.strip() == "1"
    assert c.sh("cat /sys/devices/system/cpu/online").stdout.strip() == "0"
    uptime = float(c.sh("cat /proc/uptime").stdout.split()[0])
    assert uptime <= time.monotonic() - c.started_at + 2
    # The host's own files differ: the views really are lxcfs, not a coincidence.
    assert Path("/proc/meminfo").read_text().splitlines()[0].split()[1] != "262144"
    status = health.container_health(c.init_pid(), compute_views(lxcfs.home))
    assert status.healthy, status


def test_without_views_the_container_sees_the_host(
    lxcfs: PrivateLxcfs, make_container: MakeContainer
) -> None:
    c = make_container(lxcfs.home, lxcfs_views=False)
    host_total = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    assert _meminfo_total(c) == host_total
    status = health.container_health(c.init_pid(), compute_views(lxcfs.home))
    assert not status.healthy and not any(v.mounted for v in status.views)


def test_recovery_after_sigkill_without_restarting_containers(
    lxcfs: PrivateLxcfs, make_container: MakeContainer
) -> None:
    containers = [make_container(lxcfs.home) for _ in range(2)]
    inits = [c.init_pid() for c in containers]
    views = compute_views(lxcfs.home)
    for c in containers:
        assert _meminfo_total(c) == "262144 kB"

    assert lxcfs.current is not None and lxcfs.current.pid is not None
    os.kill(lxcfs.current.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while daemon.current(lxcfs.home) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health.home_status(lxcfs.home).state is health.HomeState.DEAD
    for c in containers:
        broken = c.sh("cat /proc/meminfo", check=False)
        assert broken.returncode != 0
        assert "Transport endpoint is not connected" in broken.stderr
        assert not health.container_health(c.init_pid(), views).healthy
    with pytest.raises(LxcfsError, match="does not answer"):
        compute_views(lxcfs.home)

    lxcfs.start()
    assert compute_views(lxcfs.home) == views
    for pid in inits:
        report = remount.remount_views(pid, views)
        assert report.ok, report
        assert {r.target for r in report.results} == {v.target for v in views}

    deadline = time.monotonic() + 5
    values: list[str] = []
    while time.monotonic() < deadline:
        values = [c.sh("head -n 1 /proc/meminfo", check=False).stdout for c in containers]
        if all("262144 kB" in v for v in values):
            break
        time.sleep(0.1)
    assert all("262144 kB" in v for v in values), values
    for c, pid in zip(containers, inits, strict=True):
        assert c.init_pid() == pid
        assert c.sh("cat /sys/devices/system/cpu/online").stdout.strip() == "0"
        assert health.container_health(pid, views).healthy


def test_remount_twice_does_not_stack_binds(
    lxcfs: PrivateLxcfs, make_container: MakeContainer
) -> None:
    c = make_container(lxcfs.home)
    views = compute_views(lxcfs.home)
    for _ in range(2):
        report = remount.remount_views(c.init_pid(), views)
        assert report.ok, report
        assert all(r.detached == 1 for r in report.results)
    lxcfs_mounts = c.sh("grep -c fuse.lxcfs /proc/self/mountinfo").stdout.strip()
    assert int(lxcfs_mounts) == len(views)
    assert _meminfo_total(c) == "262144 kB"
