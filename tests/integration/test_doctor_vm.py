"""`richc doctor` on a real pure cgroup v2 kernel: Debian's 6.1 booted with virtme-ng.

One boot runs every check (see ../shared/docs/TESTING.md for the VM recipe). The guest
writes what the kernel itself says (statfs of /sys/fs/cgroup, cgroup.controllers, uname)
next to doctor's JSON, with and without the lxc bindings, and before and after
`modprobe loop`; the host side compares them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.vm]

VENV_BIN = Path(sys.executable).parent
GUEST = """#!/bin/sh
OUT={out}
RICHC={richc}
export RICHC_ROOT=/tmp/richc-doctor-vm
uname -r > $OUT/release
stat -f -c %T /sys/fs/cgroup > $OUT/cgroup_fstype
cat /sys/fs/cgroup/cgroup.controllers > $OUT/controllers
$RICHC doctor --format json > $OUT/doctor.json 2> $OUT/doctor.err
echo $? > $OUT/doctor.rc
PYTHONPATH={shadow} $RICHC doctor --format json > $OUT/nolxc.json 2> $OUT/nolxc.err
echo $? > $OUT/nolxc.rc
modprobe loop && $RICHC doctor --format json > $OUT/loop.json 2> $OUT/loop.err
echo $? > $OUT/loop.rc
"""


def vm_kernel() -> Path | None:
    kernels = sorted(Path("/boot").glob("vmlinuz-*-amd64"))
    return kernels[-1] if kernels else None


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    vng = VENV_BIN / "vng"
    kernel = vm_kernel()
    if not vng.exists():
        pytest.skip("virtme-ng (vng) is not installed in the venv")
    if kernel is None:
        pytest.skip("no /boot/vmlinuz-*-amd64 to boot (apt-get install linux-image-amd64)")
    if os.geteuid() != 0:
        pytest.skip("the VM tests need root")
    base = tmp_path_factory.mktemp("doctor-vm")
    out, shadow = base / "out", base / "shadow"
    out.mkdir()
    (shadow / "lxc").mkdir(parents=True)
    (shadow / "lxc/__init__.py").write_text(
        'raise ImportError("lxc bindings hidden by the test")\n'
    )
    script = base / "guest.sh"
    script.write_text(GUEST.format(out=out, richc=VENV_BIN / "richc", shadow=shadow))
    script.chmod(0o755)
    started = time.monotonic()
    proc = subprocess.run(
        ["timeout", "900", str(vng), "--run", str(kernel), "--disable-kvm", "--cpus", "1",
         "--memory", "256M", "--rwdir", str(out), "--exec", str(script)],
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe: qemu's two streams must not overwrite each other
        text=True,
        check=False,
    )  # fmt: skip
    print(f"doctor VM boot and checks took {time.monotonic() - started:.0f} s")
    assert proc.returncode == 0, proc.stdout[-3000:]
    found: dict[str, Any] = {"out": out}
    for name in ("release", "cgroup_fstype", "controllers", "doctor.rc", "nolxc.rc", "loop.rc"):
        found[name] = (out / name).read_text().strip()
    for name in ("doctor", "nolxc", "loop"):
        found[name] = json.loads((out / f"{name}.json").read_text())
    return found


def test_pure_v2_kernel(guest: dict[str, Any]) -> None:
    assert guest["cgroup_fstype"] == "cgroup2fs"
    data = guest["doctor"]
    assert guest["doctor.rc"] == "0"
    assert data["kernel"]["release"] == guest["release"]
    assert data["cgroups"]["layout"] == "v2"
    assert data["cgroups"]["v2_mountpoint"] == "/sys/fs/cgroup"
    assert data["cgroups"]["v2_controllers"] == sorted(guest["controllers"].split())
    assert data["features"]["cgroup_version"] == 2
    assert data["features"]["cgroup_controllers"] == ["memory", "cpu", "cpuset", "pids"]
    checks = {c["check"]: c for c in data["checks"]}
    assert checks["cgroups"]["use"] == "lxc.cgroup2.* keys, OCI unified resources"


def test_runc_without_bindings_in_the_vm(guest: dict[str, Any]) -> None:
    data = guest["nolxc"]
    assert guest["nolxc.rc"] == "0"
    assert data["runtimes"]["lxc"]["error"] == "ImportError: lxc bindings hidden by the test"
    assert data["features"]["runtime"] == "runc"


def test_loop_backend_follows_the_loop_module(guest: dict[str, Any]) -> None:
    before, after = guest["doctor"], guest["loop"]
    # The store is on the guest's overlay /tmp: only the loop backend could serve it.
    assert before["quota"]["fstype"] == "overlay"
    assert before["features"]["quota_backend"] is None
    assert guest["loop.rc"] == "0"
    assert after["features"]["quota_backend"] == "loop"
