"""The lifecycle on a real pure cgroup v2 kernel, on lxc, runc and crun: one virtme-ng boot.

This host is hybrid (v1 controllers), so the cgroup v2 rendering of both runtimes
(``lxc.cgroup2.*`` keys, OCI ``unified`` resources) and crun (which refuses hybrid hosts)
only run for real in the VM. For the crun round the guest hides runc behind a bind mount of
/dev/null, so richc's runc runtime falls back to the crun binary, as it does on a host with
crun only. See ../shared/docs/TESTING.md for the VM recipe.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.vm]

VENV_BIN = Path(sys.executable).parent
ROUNDS = ("lxc", "runc", "crun")
GUEST = """#!/bin/sh
OUT={out}
RICHC={richc}
PY={python}
stat -f -c %T /sys/fs/cgroup > $OUT/cgroup_fstype
for R in {rounds}; do
    export RICHC_ROOT=/tmp/richc-vm-$R
    RT=$R
    if [ $R = crun ]; then
        RT=runc
        mount --bind /dev/null "$(command -v runc)"
    fi
    N=c-$R
    $RICHC create $N --runtime $RT --memory 128M --pids 64 --net none --start > $OUT/$R.create 2>&1
    echo $? > $OUT/$R.create.rc
    $RICHC inspect $N > $OUT/$R.inspect.json
    KEEPER=$RICHC_ROOT/run/richc/containers/$N/console-keeper.pid
    [ -f $KEEPER ] && tr '\\0' ' ' < /proc/$(cat $KEEPER)/cmdline > $OUT/$R.keeper
    $RICHC exec $N -- cat /proc/1/comm > $OUT/$R.comm 2>&1
    $RICHC exec $N -- hostname > $OUT/$R.hostname 2>&1
    $RICHC exec $N -- sh -c 'exit 7'; echo $? > $OUT/$R.exit
    $RICHC exec $N -- grep MemTotal /proc/meminfo > $OUT/$R.meminfo 2>&1
    $RICHC exec $N -- cat /sys/fs/cgroup/memory.max > $OUT/$R.memmax_inside 2>&1
    PID=$($PY -c 'import json,sys; print(json.load(sys.stdin)["pid"])' < $OUT/$R.inspect.json)
    CG=$(grep '^0::' /proc/$PID/cgroup | cut -d: -f3)
    cat /sys/fs/cgroup$CG/memory.max > $OUT/$R.memmax_host 2>&1
    cat /sys/fs/cgroup$CG/pids.max > $OUT/$R.pidsmax_host 2>&1
    $RICHC stop $N > $OUT/$R.stop 2>&1; echo $? > $OUT/$R.stop.rc
    $RICHC rm $N > $OUT/$R.rm 2>&1; echo $? > $OUT/$R.rm.rc
    [ -d /sys/fs/cgroup$CG ] && echo left > $OUT/$R.cgroup_left
    $RICHC lxcfs stop > /dev/null 2>&1
    [ $R = crun ] && umount "$(command -v runc)"
done
exit 0
"""


def vm_kernel() -> Path | None:
    kernels = sorted(Path("/boot").glob("vmlinuz-*-amd64"))
    return kernels[-1] if kernels else None


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    vng = VENV_BIN / "vng"
    kernel = vm_kernel()
    if not vng.exists():
        pytest.skip("virtme-ng (vng) is not installed in the venv")
    if kernel is None:
        pytest.skip("no /boot/vmlinuz-*-amd64 to boot (apt-get install linux-image-amd64)")
    if os.geteuid() != 0:
        pytest.skip("the VM tests need root")
    base = tmp_path_factory.mktemp("runtimes-vm")
    out = base / "out"
    out.mkdir()
    script = base / "guest.sh"
    script.write_text(
        GUEST.format(
            out=out, richc=VENV_BIN / "richc", python=sys.executable, rounds=" ".join(ROUNDS)
        )
    )
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
    print(f"runtimes VM boot and lifecycle took {time.monotonic() - started:.0f} s")
    assert proc.returncode == 0, proc.stdout[-3000:]
    return out


def read(out: Path, name: str) -> str:
    path = out / name
    return path.read_text().strip() if path.exists() else f"<{name} missing>"


def test_guest_is_pure_cgroup_v2(guest: Path) -> None:
    assert read(guest, "cgroup_fstype") == "cgroup2fs"


@pytest.mark.parametrize("round_", ROUNDS)
def test_lifecycle_on_cgroup_v2(guest: Path, round_: str) -> None:
    def get(what: str) -> str:
        return read(guest, f"{round_}.{what}")

    assert get("create.rc") == "0", get("create")
    assert get("comm") == "init"
    assert get("hostname") == f"c-{round_}"
    assert get("exit") == "7"
    assert get("memmax_host") == str(128 << 20)
    assert get("pidsmax_host") == "64"
    # lxcfs's view of the v2 limit (below the guest's 256M, or lxcfs shows the guest's RAM)
    assert get("meminfo").split()[1] == str(128 << 10)
    # In its own cgroup namespace, the container sees its own memory.max at the root.
    assert get("memmax_inside") == str(128 << 20)
    assert get("stop.rc") == "0" and "killed" not in get("stop"), get("stop")
    assert get("rm.rc") == "0", get("rm")
    assert not (guest / f"{round_}.cgroup_left").exists()


def test_the_oci_rounds_ran_their_own_binary(guest: Path) -> None:
    # The console keeper runs `BINARY ... create`: its command line names the binary used.
    assert "/runc --root" in read(guest, "runc.keeper")
    assert "/crun --root" in read(guest, "crun.keeper")
    assert not (guest / "lxc.keeper").exists()
