"""Project quotas on ext4 and xfs, in one throwaway VM running Debian's kernel.

This host's kernel lacks the ext4/xfs quota formats, so tests/vm/quota_guest.sh runs the
checks in a virtme-ng guest (TESTING.md). One boot covers both filesystems: the quota
package directly (about 30 s, inode limits included), then the issue's container story
with richc itself (create --disk 64M, df, dd, quota show, set disk=128M and disk.inodes
live, rm). About 4 to 5 minutes
in all here, under software emulation; each richc call costs seconds in the guest.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
GUEST = REPO / "tests" / "vm" / "quota_guest.sh"
VENV_BIN = Path(sys.executable).parent


def _kernel() -> str:
    kernels = sorted(glob.glob("/boot/vmlinuz-*-amd64"))
    if not kernels:
        pytest.skip("no Debian kernel in /boot (apt-get install linux-image-amd64)")
    return kernels[-1]


def _require_vm_host() -> None:
    if os.geteuid() != 0:
        pytest.skip("the VM test needs root (it reads /boot and uses /dev/loop in the guest)")
    if not (VENV_BIN / "vng").exists() and shutil.which("vng") is None:
        pytest.skip("virtme-ng is not installed (pip install virtme-ng)")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86 is not installed")


def test_project_quota_on_ext4_and_xfs_in_a_vm() -> None:
    _require_vm_host()
    kernel = _kernel()
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    argv = [
        "timeout",
        "900",
        "vng",
        "--run",
        kernel,
        "--disable-kvm",  # KVM fails on these hosts ("failed to set MSR 0x10a")
        "--cpus",
        "1",  # 2-3x faster than 2 under emulation
        "--memory",
        "512M",  # the images live in a tmpfs in the guest (mounted with discard)
        "--exec",
        str(GUEST),
    ]
    start = time.monotonic()
    # One pipe for both streams: qemu writes them separately and files would clobber.
    proc = subprocess.run(
        argv,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - start
    print(f"quota VM test: {elapsed:.0f} s wall time, vng exit status {proc.returncode}")
    log = proc.stdout
    print("\n".join(line for line in log.splitlines() if line.startswith("CHECK ")))
    checks = dict(re.findall(r"^CHECK (\S+): (ok|FAIL)", log, re.MULTILINE))
    failed = sorted(name for name, state in checks.items() if state != "ok")
    assert "QUOTA-VM-RESULT: PASS" in log and proc.returncode == 0, (
        f"exit {proc.returncode}, failed checks {failed}\n{log[-6000:]}"
    )
    for fs in ("ext4", "xfs"):
        for step in (
            "not-enabled-is-explained",
            "prepare-64M-df",
            "write-100M-fails",
            "usage",
            "resize-128M-write-ok",
            "adopt-tree-with-fifo",
            "remove",
            "inodes-prepare-500-statfs",
            "inodes-600-files-fail",
            "inodes-usage",
            "inodes-raise-live-resize-keeps",
            "inodes-remove",
        ):
            assert checks.get(f"{fs}-{step}") == "ok", f"{fs}-{step} missing\n{log[-4000:]}"
        for step in (
            "create-64M-df",
            "dd-100M-fails",
            "quota-show",
            "set-128M-live",
            "set-inodes-live",
            "rm-leaves-no-limit",
        ):
            key = f"{fs}-container-{step}"
            assert checks.get(key) == "ok", f"{key} missing\n{log[-4000:]}"
    for step in ("create-64M-df", "dd-100M-fails", "set-128M-live", "rm-leaves-no-loop"):
        key = f"ext4-loop-{step}"
        assert checks.get(key) == "ok", f"{key} missing\n{log[-4000:]}"
    assert "Disk quota exceeded" in log  # ext4 says EDQUOT ...
    assert re.search(r"xfs-write-100M-fails: ok .*No space left on device", log)  # xfs ENOSPC
    assert re.search(r"ext4-inodes-600-files-fail: ok .*Disk quota exceeded", log)
    assert re.search(r"xfs-inodes-600-files-fail: ok .*No space left on device", log)
