"""The limits, set and stats integration tests again, on a pure cgroup v2 kernel.

One virtme-ng boot of Debian's kernel (the recipe in ../shared/docs/TESTING.md) runs
pytest inside the guest against this same checkout: test_limits.py, test_set.py and
test_stats.py, unchanged. They read the cgroup version from the probe, so inside they
check memory.max, cpu.max, cpu.weight, memory.low, pids.max and the OOM and fork effects
on cgroup2. The host side checks that the guest really was v2 and that they passed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.vm]

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
SUITES = ("test_limits.py", "test_set.py", "test_stats.py")
# Under software emulation each container test costs ~45 s, so the guest runs the tests
# whose outcome depends on the cgroup version; the refusals, env and listing tests do not
# (they run on the host), and one invalid-key case stands for the six.
SELECTION = (
    "not refused and not watch and not list_shows and not lists_running and not env_rewrites"
    " and not (invalid_key and not items0)"
)
GUEST = """#!/bin/sh
# In the guest: vng passes no environment and runs this under the default PATH.
OUT={out}
stat -f -c %T /sys/fs/cgroup > $OUT/cgroup_fstype
nproc > $OUT/nproc
cd {repo}
export RICHC_TEST_DEFAULT_NET=none
{python} -m pytest -p no:cacheprovider -q -rs -m integration -k "{selection}" {tests} \
    > $OUT/pytest.log 2>&1
echo $? > $OUT/rc
"""


def vm_kernel() -> Path | None:
    kernels = sorted(Path("/boot").glob("vmlinuz-*-amd64"))
    return kernels[-1] if kernels else None


def test_limits_set_and_stats_on_cgroup_v2(tmp_path: Path) -> None:
    vng = VENV_BIN / "vng"
    kernel = vm_kernel()
    if not vng.exists():
        pytest.skip("virtme-ng (vng) is not installed in the venv")
    if kernel is None:
        pytest.skip("no /boot/vmlinuz-*-amd64 to boot (apt-get install linux-image-amd64)")
    if os.geteuid() != 0:
        pytest.skip("the VM tests need root")
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "guest.sh"
    tests = " ".join(f"tests/integration/{suite}" for suite in SUITES)
    script.write_text(
        GUEST.format(
            out=out, repo=REPO, python=VENV_BIN / "python", tests=tests, selection=SELECTION
        )
    )
    script.chmod(0o755)
    started = time.monotonic()
    # Two CPUs (slower to boot than one) so that --cpuset 1 has a CPU to narrow to.
    proc = subprocess.run(
        ["timeout", "1800", str(vng), "--run", str(kernel), "--disable-kvm", "--cpus", "2",
         "--memory", "512M", "--rwdir", str(out), "--exec", str(script)],
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe: qemu's two streams must not overwrite each other
        text=True,
        check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    print(f"limits VM boot and tests took {elapsed:.0f} s")
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (out / "pytest.log").read_text()
    print(log[-2000:])
    assert (out / "cgroup_fstype").read_text().strip() == "cgroup2fs"
    assert (out / "nproc").read_text().strip() == "2"
    assert (out / "rc").read_text().strip() == "0", log[-4000:]
    summary = log.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 11, summary
    assert "failed" not in summary and "error" not in summary, summary
