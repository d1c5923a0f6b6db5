"""vmimport where this host's kernel cannot go, in one throwaway VM running Debian's
kernel (TESTING.md): partitions the kernel parses itself, a root on LVM activated
read-only and released, and an image served by qemu-nbd. tests/vm/vmimport_check.py
does the work and prints a CHECK line each; about a minute here."""

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
GUEST = REPO / "tests" / "vm" / "vmimport_guest.sh"
VENV_BIN = Path(sys.executable).parent


def test_partitions_lvm_and_nbd_in_a_vm() -> None:
    if os.geteuid() != 0:
        pytest.skip("the VM test needs root")
    kernels = sorted(glob.glob("/boot/vmlinuz-*-amd64"))
    if not kernels:
        pytest.skip("no Debian kernel in /boot (apt-get install linux-image-amd64)")
    if not (VENV_BIN / "vng").exists() and shutil.which("vng") is None:
        pytest.skip("virtme-ng is not installed (pip install virtme-ng)")
    for tool in ("qemu-system-x86_64", "lvcreate", "qemu-nbd", "dmsetup"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (qemu-system-x86, lvm2, qemu-utils)")
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    argv = [
        "timeout", "600", "vng", "--run", kernels[-1],
        "--disable-kvm",  # KVM fails on these hosts ("failed to set MSR 0x10a")
        "--cpus", "1",  # 2-3x faster than 2 under emulation
        "--memory", "512M",  # the images live in the guest's /tmp
        "--exec", f"{GUEST} {sys.executable} {REPO}",
    ]  # fmt: skip
    start = time.monotonic()
    # One pipe for both streams: qemu writes them separately and files would clobber.
    proc = subprocess.run(
        argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, check=False,
    )  # fmt: skip
    print(f"vmimport VM test: {time.monotonic() - start:.0f} s, vng exit {proc.returncode}")
    log = proc.stdout
    print("\n".join(line for line in log.splitlines() if line.startswith("CHECK ")))
    checks = dict(re.findall(r"^CHECK (\S+): (ok|FAIL)", log, re.MULTILINE))
    expected = {"kernel-partitions": "ok", "lvm-root-read-only": "ok", "nbd": "ok"}
    assert checks == expected, log[-6000:]
    assert "VMIMPORT-VM-RESULT: PASS" in log and proc.returncode == 0, log[-6000:]
