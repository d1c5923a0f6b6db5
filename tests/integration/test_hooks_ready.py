"""poststart waits for the init to be ready: systemd says running, SysV init is in its runlevel.

Boots debootstrapped Debian containers on each runtime; the images are built once per
session (or kept in $RICHC_TEST_IMAGE_CACHE, as the rootfs tests do).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RichcRunner, private_root

pytestmark = pytest.mark.integration


@pytest.fixture
def richc_root(image_cache: Path) -> Iterator[Path]:
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")
    with private_root(image_cache) as root:
        yield root


@pytest.mark.parametrize("runtime", ["lxc", "runc"])
def test_poststart_runs_once_systemd_is_running(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path, runtime: str
) -> None:
    if runtime == "runc" and shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    seen = tmp_path / "seen"
    hook = tmp_path / "state"
    # The hook asks systemd itself, inside the container, without waiting. It enters the
    # container's user namespace too (-U, when it has its own: unprivileged), or systemd
    # sees host root as no one of its own and refuses the query.
    hook.write_text(
        "#!/bin/sh\n"
        'userns=""\n'
        '[ "$(readlink /proc/$RICHC_PID/ns/user)" = "$(readlink /proc/self/ns/user)" ]'
        " || userns=-U\n"
        "nsenter -t $RICHC_PID $userns -m -u -i -n -p -r -w systemctl is-system-running"
        f" > {seen} 2>&1\n"
        "exit 0\n"
    )
    hook.chmod(0o755)
    richc(
        "create", name, "--from", "debian:bookworm", "--runtime", runtime,
        "--hook", f"poststart={hook}", timeout=900,
    )  # fmt: skip
    richc("start", name)
    info: dict[str, Any] = json.loads(richc("inspect", name).stdout)
    assert info["init"] == "systemd"
    assert seen.read_text().strip() in ("running", "degraded"), seen.read_text()
    richc("stop", name)
    assert json.loads(richc("inspect", name).stdout)["state"] == "stopped"


@pytest.mark.parametrize("runtime", ["lxc", "runc"])
def test_poststart_runs_once_sysvinit_reached_its_runlevel(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path, runtime: str
) -> None:
    if runtime == "runc" and shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    seen = tmp_path / "seen"
    hook = tmp_path / "state"
    # What the hook sees: the runlevel in utmp, and no /etc/init.d/rc still running.
    hook.write_text(
        "#!/bin/sh\n"
        f"nsenter -t $RICHC_PID -m -p -r -w runlevel > {seen}\n"
        f"nsenter -t $RICHC_PID -m -p -r -w ps -eo args | grep -c '^/bin/sh /etc/init.d/rc'"
        f" >> {seen}\n"
        "exit 0\n"
    )
    hook.chmod(0o755)
    richc(
        "create", name, "--from", "debian:bookworm", "--init", "sysvinit", "--runtime", runtime,
        "--hook", f"poststart={hook}", timeout=900,
    )  # fmt: skip
    richc("start", name)
    assert seen.read_text().split() == ["N", "2", "0"], seen.read_text()
    richc("stop", name)
