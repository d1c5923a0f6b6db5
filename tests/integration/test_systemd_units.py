"""`richc unit install|show|remove` through the CLI, on a host where systemd is not PID 1.

The units go under the private --root (never /etc/systemd); systemd-analyze verifies what
was installed, and `richc rm` takes the unit away with the container.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import RICHC, RichcRunner

pytestmark = pytest.mark.integration


def systemd_is_pid1() -> bool:
    return Path("/run/systemd/system").is_dir()


@pytest.mark.skipif(systemd_is_pid1(), reason="checks the behaviour where systemd is not PID 1")
def test_install_without_systemd_writes_files_and_says_so(
    richc: RichcRunner, richc_root: Path, name: str
) -> None:
    richc("create", name, "--restart", "on-failure")
    units = richc_root / "etc/systemd/system"

    proc = richc("unit", "install", name, "--enable")
    assert "systemd is not running on this host" in proc.stderr
    assert "enabled" in proc.stderr
    dropin = units / f"richc@{name}.service.d/50-richc.conf"
    assert "Restart=on-failure" in dropin.read_text()
    template = (units / "richc@.service").read_text()
    assert f"ExecStart={RICHC} --root {richc_root} start --foreground %i" in template
    # --enable works offline: richc.target wants the instance; multi-user wants the target.
    assert (units / f"richc.target.wants/richc@{name}.service").is_symlink()
    assert (units / "multi-user.target.wants/richc.target").is_symlink()

    unit = json.loads(richc("inspect", name).stdout)["unit"]
    assert unit["name"] == f"richc@{name}.service" and unit["enabled"] is True
    assert str(dropin) in unit["files"]

    # `unit show` prints what was installed.
    shown = richc("unit", "show", name).stdout
    assert template in shown and dropin.read_text() in shown

    # --now cannot work without systemd: a clear error, and the files stay.
    now = richc("unit", "install", name, "--now", check=False)
    assert now.returncode == 1
    assert "cannot start" in now.stderr and "systemd is not running" in now.stderr
    assert f"richc start --foreground {name}" in now.stderr
    assert dropin.exists()

    if shutil.which("systemd-analyze"):
        env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{units}:")
        verify = subprocess.run(
            ["systemd-analyze", "verify", f"richc@{name}.service", "richc.target"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")

    # A changed config is picked up by installing again.
    config = richc_root / f"var/lib/richc/containers/{name}/config.yaml"
    config.write_text(config.read_text().replace("restart: on-failure", "restart: always"))
    richc("unit", "install", name)
    assert "Restart=always" in dropin.read_text()
    assert json.loads(richc("inspect", name).stdout)["unit"]["enabled"] is True

    richc("unit", "remove", name)
    assert not any(units.rglob("*")), sorted(units.rglob("*"))
    assert json.loads(richc("inspect", name).stdout)["unit"] is None


def test_rm_removes_the_unit_but_not_another_containers(
    richc: RichcRunner, richc_root: Path, name: str
) -> None:
    other = f"{name}-b"
    units = richc_root / "etc/systemd/system"
    for each in (name, other):
        richc("create", each)
        richc("unit", "install", each, "--enable")
    richc("rm", name)
    assert not (units / f"richc@{name}.service.d").exists()
    assert not (units / f"richc.target.wants/richc@{name}.service").exists()
    assert (units / f"richc@{other}.service.d/50-richc.conf").exists()
    assert (units / "richc@.service").exists()
    richc("rm", other)
    assert not any(units.rglob("*")), sorted(units.rglob("*"))


def test_unit_for_a_missing_container_is_an_error(richc: RichcRunner) -> None:
    proc = richc("unit", "install", "richc-test-missing", check=False)
    assert proc.returncode == 1 and "no container named richc-test-missing" in proc.stderr
