"""`richc doctor` run as a user runs it: the installed command, on this host and on recorded
trees of older kernels, and with the lxc bindings made unimportable.

Expected values come from the host itself (uname, statfs, mountinfo, a separate python
that tries `import lxc`), not from richc's own probe.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RichcRunner
from tests.integration.test_quota_containers import btrfs_containers

pytestmark = pytest.mark.integration

__all__ = ["btrfs_containers"]

RICHC = Path(sys.executable).with_name("richc")
HOSTS = Path(__file__).resolve().parent.parent / "fixtures" / "hosts"
CHECKS = [
    "kernel",
    "namespaces",
    "cgroups",
    "cgroup_mount",
    "overlayfs",
    "fuse",
    "lxcfs",
    "lxcfs_remount",
    "pidfd",
    "quota",
    "seccomp",
    "apparmor",
    "user_namespaces",
    "runtime",
    "systemd",
]
# CGROUP_SUPER_MAGIC and CGROUP2_SUPER_MAGIC, as `stat -f -c %T` names them.
CGROUP1, CGROUP2 = "cgroupfs", "cgroup2fs"


def doctor(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if not RICHC.exists():
        pytest.skip(f"richc is not installed at {RICHC} (pip install -e .)")
    return subprocess.run(
        [str(RICHC), "doctor", *args],
        env={**os.environ, "RICHC_ROOT": str(tmp_path / "root"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def doctor_json(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    proc = doctor(tmp_path, "--format", "json", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def fs_type(path: str) -> str:
    return subprocess.run(
        ["stat", "-f", "-c", "%T", path], capture_output=True, text=True, check=True
    ).stdout.strip()


def lxc_imports() -> bool:
    code = subprocess.run([sys.executable, "-c", "import lxc"], capture_output=True).returncode
    return code == 0


@pytest.fixture
def no_lxc(tmp_path: Path) -> dict[str, str]:
    """An environment whose `import lxc` fails: a shadowing package ahead on PYTHONPATH."""
    shadow = tmp_path / "shadow"
    (shadow / "lxc").mkdir(parents=True)
    (shadow / "lxc/__init__.py").write_text(
        'raise ImportError("lxc bindings hidden by the test")\n'
    )
    return {"PYTHONPATH": str(shadow)}


def test_table_has_one_line_per_check(tmp_path: Path) -> None:
    proc = doctor(tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "VALUE", "USE", "WHY"]
    probe = [line for line in lines[1:] if not line.startswith(("net: ", "isolation: "))]
    assert [line.split()[0] for line in probe] == CHECKS
    # The secure defaults on this host (isolation.hostcheck).
    isolation = [
        line.split("  ")[0].strip() for line in lines[1:] if line.startswith("isolation: ")
    ]
    assert isolation == [
        "isolation: user namespaces", "isolation: rootfs ownership", "isolation: seccomp",
        "isolation: apparmor", "isolation: fresh /proc",
    ]  # fmt: skip
    # Then managed networking, checked live on this machine.
    net = [line.split("  ")[0].strip() for line in lines[1:] if line.startswith("net: ")]
    assert net == [
        "net: ip forwarding", "net: nftables", "net: forwarding not blocked", "net: dnsmasq",
        "net: pyroute2",
    ]  # fmt: skip
    kernel = lines[1].split()
    assert kernel[1] == os.uname().release


def test_json_matches_the_host(tmp_path: Path) -> None:
    data = doctor_json(tmp_path)
    assert data["schema_version"] == 1
    assert data["kernel"]["release"] == os.uname().release
    assert [c["check"] for c in data["checks"]] == CHECKS
    assert {c["name"] for c in data["network"]} >= {"nftables", "dnsmasq"}
    isolation = {c["name"]: c for c in data["isolation"]}
    assert set(isolation) == {
        "user namespaces", "rootfs ownership", "seccomp", "apparmor", "fresh /proc",
    }  # fmt: skip
    # This host is no container: its /proc and /sys are whole, so nesting needs nothing.
    assert isolation["fresh /proc"]["ok"], isolation["fresh /proc"]
    if not os.path.exists("/sys/module/apparmor"):  # this project's host: doctor says why
        assert not isolation["apparmor"]["ok"] and "no AppArmor" in isolation["apparmor"]["detail"]

    # The cgroup layout, from the filesystem types the kernel reports.
    top = fs_type("/sys/fs/cgroup")
    memory_v1 = (
        os.path.isdir("/sys/fs/cgroup/memory") and fs_type("/sys/fs/cgroup/memory") == CGROUP1
    )
    unified = (
        os.path.isdir("/sys/fs/cgroup/unified") and fs_type("/sys/fs/cgroup/unified") == CGROUP2
    )
    if top == CGROUP2:
        assert data["cgroups"]["layout"] == "v2"
        assert data["features"]["cgroup_version"] == 2
    elif memory_v1:
        assert data["cgroups"]["layout"] == ("hybrid" if unified else "v1")
        assert data["features"]["cgroup_version"] == 1
        assert "memory" in data["cgroups"]["v1_controllers"]

    assert data["features"]["use_cgroup_ns"] == os.path.exists("/proc/self/ns/cgroup")
    assert data["filesystems"]["dev_fuse"] == os.path.exists("/dev/fuse")
    registered = Path("/proc/filesystems").read_text().split()
    assert data["filesystems"]["overlay_loaded"] == ("overlay" in registered)
    if "fuse" in registered:  # else it may still be a module the config names
        assert data["filesystems"]["fuse"] is True
    assert data["systemd"]["pid1_comm"] == Path("/proc/1/comm").read_text().strip()
    assert data["features"]["systemd_pid1"] == os.path.isdir("/run/systemd/system")
    assert data["cpu_count"] == os.cpu_count()

    runc = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert data["runtimes"]["runc"]["present"] == (runc is not None)
    assert data["runtimes"]["lxc"]["bindings"] == lxc_imports()
    expected = "lxc" if lxc_imports() else ("runc" if runc else None)
    assert data["features"]["runtime"] == expected


def test_quota_is_judged_for_the_store_under_root(tmp_path: Path) -> None:
    data = doctor_json(tmp_path)
    # The containers directory does not exist yet: its path is resolved as far as it exists.
    containers = os.path.realpath(tmp_path) + "/root/var/lib/richc/containers"
    assert data["quota"]["path"] == data["quota"]["selected"]["path"] == containers
    # The filesystem statfs reports for the nearest existing directory of the store.
    kind = {"ext2/ext3": "ext4", "btrfs": "btrfs", "xfs": "xfs", "tmpfs": "tmpfs"}
    reported = fs_type(str(tmp_path))
    if reported in kind:
        assert data["quota"]["fstype"] in (kind[reported], "ext3", "ext2")
    backends = {b["name"]: b["possible"] for b in data["quota"]["backends"]}
    assert backends["loop"] == os.path.exists("/dev/loop-control")
    assert data["features"]["quota_backend"] == next(
        (b["name"] for b in data["quota"]["backends"] if b["possible"]), None
    )
    assert data["features"]["quota_backend"] == data["quota"]["selected"]["backend"]


def test_quota_choice_is_what_create_records_on_a_containers_mount(
    btrfs_containers: Path, richc: RichcRunner, name: str
) -> None:
    """var/lib/richc stays on the host's filesystem; only containers/ is btrfs. doctor must
    answer for containers/, with create's own checks, and create must then agree."""
    assert fs_type(str(btrfs_containers.parent)) != "btrfs"
    data = json.loads(richc("doctor", "--format", "json").stdout)
    assert data["quota"]["path"] == os.path.realpath(btrfs_containers)
    assert data["quota"]["mountpoint"] == os.path.realpath(btrfs_containers)
    assert data["quota"]["fstype"] == "btrfs"
    chosen = data["features"]["quota_backend"]
    assert chosen == data["quota"]["selected"]["backend"] == "btrfs"
    assert [t["name"] for t in data["quota"]["selected"]["tried"]] == ["btrfs"]
    row = next(c for c in data["checks"] if c["check"] == "quota")
    assert row["use"] == chosen

    richc("create", name, "--disk", "64M")
    disk = json.loads(richc("inspect", name).stdout)["disk"]
    assert disk["backend"] == chosen and disk["limit_bytes"] == 64 * 1024 * 1024


def test_without_lxc_bindings_auto_picks_runc_and_says_why(
    tmp_path: Path, no_lxc: dict[str, str]
) -> None:
    if shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
        pytest.skip("runc is not installed")
    data = doctor_json(tmp_path, env=no_lxc)
    assert data["runtimes"]["lxc"]["bindings"] is False
    assert data["runtimes"]["lxc"]["error"] == "ImportError: lxc bindings hidden by the test"
    assert data["features"]["runtime"] == "runc"
    assert data["features"]["runtime_binary"].endswith("/runc")

    table = doctor(tmp_path, env=no_lxc)
    runtime = next(line for line in table.stdout.splitlines() if line.startswith("runtime "))
    assert "auto -> runc" in runtime
    assert "lxc bindings do not load (ImportError: lxc bindings hidden by the test" in runtime


@pytest.mark.parametrize(
    ("host", "layout", "cgroup_ns", "cgroup_mount", "quota"),
    [
        ("linux-2.6.32-squeeze", "v1", False, "cgroup:mixed", "loop"),
        ("linux-3.10-rhel7", "v1", False, "cgroup:mixed", "loop"),
        ("linux-4.19-buster", "hybrid", True, "cgroup:mixed:force", "btrfs"),
        ("linux-5.10-bullseye", "v2", True, "cgroup:mixed", "project"),
        ("linux-6.18-host", "hybrid", True, "cgroup:mixed:force", "loop"),
    ],
)
def test_recorded_trees(
    tmp_path: Path, host: str, layout: str, cgroup_ns: bool, cgroup_mount: str, quota: str
) -> None:
    root = HOSTS / host
    data = doctor_json(tmp_path, "--host-root", str(root))
    assert data["root"] == str(root)
    release = (root / "proc/sys/kernel/osrelease").read_text().strip()
    assert data["kernel"]["release"] == release
    assert data["cgroups"]["layout"] == layout
    assert data["features"]["use_cgroup_ns"] is cgroup_ns
    assert ("cgroup" in data["features"]["namespaces"]) is cgroup_ns
    assert data["features"]["lxc_cgroup_mount"] == cgroup_mount
    assert data["quota"]["path"] == "/var/lib/richc"
    assert data["features"]["quota_backend"] == quota


def test_host_root_from_the_environment(tmp_path: Path) -> None:
    root = HOSTS / "linux-5.10-bullseye"
    data = doctor_json(tmp_path, env={"RICHC_HOST_ROOT": str(root)})
    assert data["kernel"]["release"] == "5.10.0-28-amd64"


def test_old_kernel_without_lxc_has_no_runtime(tmp_path: Path, no_lxc: dict[str, str]) -> None:
    root = HOSTS / "linux-2.6.32-squeeze"
    proc = doctor(tmp_path, "--host-root", str(root), env=no_lxc)
    assert proc.returncode == 1
    assert "auto -> none" in proc.stdout
    assert proc.stderr.startswith("error: no container runtime works on this host")
    assert "runc: kernel 2.6.32 is older than 3.10" in proc.stderr
    assert "or runc" not in proc.stderr  # runc would not help on this kernel


def lxcfs_mounted(point: Path) -> bool:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(point) and fields[fields.index("-", 6) + 1] == "fuse.lxcfs":
            return True
    return False


@pytest.fixture
def private_lxcfs(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """An lxcfs of our own on a private directory; unmounted and stopped (by pid) after."""
    lxcfs = shutil.which("lxcfs", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if lxcfs is None:
        pytest.skip("lxcfs is not installed")
    if os.geteuid() != 0:
        pytest.skip("lxcfs needs root")
    home = tmp_path / "lxcfs"
    home.mkdir()
    proc = subprocess.Popen(
        [lxcfs, "--foreground", "--pidfile", str(tmp_path / "lxcfs.pid"), str(home)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not lxcfs_mounted(home):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"lxcfs did not mount {home} (exit status {proc.poll()})")
            time.sleep(0.05)
        yield proc, home
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run(["umount", "-l", str(home)], capture_output=True, check=False)


def test_lxcfs_serving_then_dead(
    tmp_path: Path, private_lxcfs: tuple[subprocess.Popen[bytes], Path]
) -> None:
    proc, home = private_lxcfs
    data = doctor_json(tmp_path)
    assert str(home) in data["lxcfs"]["mountpoints"]
    assert str(home) not in data["lxcfs"]["dead"]

    proc.kill()  # SIGKILL: the mount stays, the daemon behind it is gone
    proc.wait()
    data = doctor_json(tmp_path)
    assert str(home) in data["lxcfs"]["dead"]
    assert data["features"]["lxcfs_mountpoint"] != str(home)
    table = doctor(tmp_path).stdout
    assert f"{home} (dead)" in table


def test_create_path_picks_what_doctor_shows(tmp_path: Path) -> None:
    """`--runtime auto` (auto_runtime) and doctor's runtime line agree on this host."""
    from richc.probe import auto_runtime

    choice = auto_runtime()
    data = doctor_json(tmp_path)
    assert (choice.runtime, choice.binary) == (
        data["features"]["runtime"],
        data["features"]["runtime_binary"],
    )
