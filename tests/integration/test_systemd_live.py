"""A live systemd: systemd as PID 1 in a Debian rich container, with richc installed inside,
managing a nested unprivileged busybox container through `richc unit install --now`.

This host has no systemd as PID 1, so the unit, Type=notify, Restart= and ExecStop can only
be seen working for real one level down. It takes about three minutes (debootstrap, then
apt-get in the container) and needs the Debian mirror.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import RichcRunner

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    "python3 python3-venv python3-lxc python3-systemd python3-yaml python3-jinja2"
    " python3-psutil lxc busybox-static"
)
WRAPPER = """#!/opt/richc/bin/python3
import sys
sys.path.insert(0, "/opt/richc-src")
from richc.cli import run
run()
"""


def wait_for(what: str, check: Callable[[], object], limit: float = 120.0) -> object:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def install_richc(rootfs: Path, inside: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """richc from this checkout, in a venv over Debian's python3 and its lxc bindings."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("richc", "templates", "hooks", "lxcfs_integration", "quota", "netctl",
                 "isolation", "vmimport"):  # fmt: skip
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, rootfs / "opt/richc-src" / part, ignore=ignore)
    inside("python3", "-m", "venv", "--system-site-packages", "/opt/richc")
    purelib = inside(
        "/opt/richc/bin/python3", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    ).stdout.strip()
    # typer-slim and click are pure Python and not in bookworm at these versions; the
    # container cannot reach PyPI through this host's TLS proxy, so copy the host venv's.
    import click
    import typer

    target = rootfs / purelib.lstrip("/")
    for module in (typer, click):
        package = Path(module.__file__ or "").parent
        shutil.copytree(package, target / package.name, ignore=ignore)
        for info in package.parent.glob(f"{package.name}*.dist-info"):
            shutil.copytree(info, target / info.name)
    wrapper = rootfs / "opt/richc/bin/richc"
    wrapper.write_text(WRAPPER)
    wrapper.chmod(0o755)


@pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap is not installed")
def test_systemd_runs_a_nested_container_unit(
    richc: RichcRunner, richc_root: Path, name: str
) -> None:
    began = time.monotonic()

    def inside(
        *argv: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return richc("exec", name, "--", *argv, check=check, timeout=timeout)

    def inner() -> dict[str, object]:
        data = json.loads(inside("richc", "inspect", "inner").stdout)
        assert isinstance(data, dict)
        return data

    def unit_property(prop: str) -> str:
        return inside("systemctl", "show", "-P", prop, "richc@inner").stdout.strip()

    def journal() -> list[dict[str, str]]:
        out = inside("journalctl", "-u", "richc@inner", "-o", "json", "--no-pager").stdout
        return [json.loads(line) for line in out.splitlines()]

    # The outer container: --privileged, as the nested richc needs host ids for the inner
    # container's own 65536-id range; --nesting, so the inner container (unprivileged, the
    # default) can mount its own /proc and /sys.
    richc("create", name, "--from", "debian:bookworm", "--net", "host", "--privileged",
          "--nesting", timeout=1200)  # fmt: skip
    richc("start", name)
    state = wait_for(
        "systemd to boot",
        lambda: (
            inside("systemctl", "is-system-running", check=False).stdout.strip()
            in ("running", "degraded")
        ),
    )
    assert state
    inside("sh", "-c", f"apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install"
           f" -y -qq --no-install-recommends {PACKAGES} >/dev/null", timeout=1200)  # fmt: skip
    rootfs = richc_root / "var/lib/richc/containers" / name / "rootfs"
    install_richc(rootfs, inside)
    # No cgroup fix-up inside: the outer container's systemd cannot co-mount this hybrid
    # host's separate cpu and cpuacct hierarchies, but cgroup:mixed:force has LXC mount
    # them as the host has them, so the nested LXC finds every controller it needs.

    doctor = json.loads(inside("/opt/richc/bin/richc", "doctor", "--format", "json").stdout)
    fresh_proc = next(c for c in doctor["isolation"] if c["name"] == "fresh /proc")
    assert fresh_proc["ok"], fresh_proc
    inside("/opt/richc/bin/richc", "create", "inner", "--no-lxcfs", "--net", "none",
           "--restart", "on-failure")  # fmt: skip
    # `richc` inside is /opt/richc/bin/richc: the unit's ExecStart names that script.
    installed = inside("/opt/richc/bin/richc", "unit", "install", "inner", "--enable", "--now")
    assert "installed richc@inner.service (enabled, started)" in installed.stderr
    inside("ln", "-s", "/opt/richc/bin/richc", "/usr/local/bin/richc")

    assert inside("systemctl", "is-active", "richc@inner").stdout.strip() == "active"
    assert unit_property("Type") == "notify"
    first = inner()
    assert first["state"] == "running" and isinstance(first["pid"], int)
    assert first["security"]["privileged"] is False  # unprivileged, one level down
    assert inside("richc", "exec", "inner", "--", "cat", "/proc/1/comm").stdout.strip() == "init"
    # The container lives in LXC's cgroups; the unit's cgroup holds only the supervisor.
    assert inside("cat", "/sys/fs/cgroup/systemd/system.slice/system-richc.slice/"
                  "richc@inner.service/cgroup.procs").stdout.split() == [
        unit_property("MainPID")]  # fmt: skip

    records = journal()
    running = [
        r
        for r in records
        if r.get("RICHC_CONTAINER") == "inner" and r["MESSAGE"].startswith("inner running")
    ]
    assert running and running[0]["RICHC_OPERATION"] == "supervise", records

    # Kill the nested init from outside: systemd restarts the unit by Restart=on-failure.
    inside("kill", "-KILL", str(first["pid"]))

    def restarted() -> bool:
        data = inner()
        return (
            data["state"] == "running"
            and data["pid"] != first["pid"]
            and unit_property("NRestarts") == "1"
            and unit_property("ActiveState") == "active"
        )

    wait_for("systemd to restart richc@inner", restarted)
    assert inside("richc", "exec", "inner", "--", "true").returncode == 0
    died = [r for r in journal() if "init died" in r.get("MESSAGE", "")]
    assert died and died[0]["RICHC_CONTAINER"] == "inner"

    # systemctl stop: ExecStop's `richc stop` marks the request; the supervisor exits 0.
    inside("systemctl", "stop", "richc@inner", timeout=120)
    assert inside("systemctl", "is-active", "richc@inner", check=False).stdout.strip() == (
        "inactive"
    )
    assert unit_property("Result") == "success"
    assert inner()["state"] == "stopped"
    assert any(r.get("MESSAGE") == "inner was stopped on request" for r in journal())
    # Nothing of LXC's is left in the container's cgroups.
    leftovers = inside("sh", "-c", "ls -d /sys/fs/cgroup/*/lxc.*.inner 2>/dev/null || true")
    assert leftovers.stdout.strip() == ""

    # At boot, richc.target (wanted by multi-user.target) starts the enabled container.
    richc("stop", name)
    richc("start", name)
    wait_for(
        "richc@inner to start at boot",
        lambda: (
            inside("systemctl", "is-active", "richc@inner", check=False).stdout.strip() == "active"
        ),
    )
    assert inner()["state"] == "running"
    assert inside("richc", "exec", "inner", "--", "true").returncode == 0

    # unit remove: stops and disables it, and takes the files away.
    inside("richc", "unit", "remove", "inner", timeout=120)
    assert inner()["state"] == "stopped"
    assert inside("systemctl", "cat", "richc@inner", check=False).returncode != 0
    assert not (rootfs / "etc/systemd/system/richc@inner.service.d").exists()
    assert not (rootfs / "etc/systemd/system/richc.target.wants").exists()
    # Without the unmasked proc and sysfs (as in a container made without --nesting), the
    # inner start fails, and the error says why and what to do.
    inside("umount", "/dev/.lxc/proc", "/dev/.lxc/sys")
    refused = inside("richc", "start", "inner", check=False)
    assert refused.returncode == 1
    assert "proc has mounts over" in refused.stderr and "--nesting" in refused.stderr, (
        refused.stderr
    )
    inside("richc", "rm", "inner")
    print(f"live systemd test took {time.monotonic() - began:.0f} s", file=sys.stderr)
