"""The systemd units richc renders: golden files for several configs, and systemd's verdict.

Regenerate the golden files after an intended change with
``RICHC_UPDATE_GOLDEN=1 pytest tests/unit/test_unit_render.py`` and review the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from richc import config as cfg
from richc import systemd_unit
from richc.paths import HostPaths

GOLDEN = Path(__file__).parent / "golden" / "systemd"
RICHC = Path("/usr/bin/richc")

CASES: dict[str, dict[str, Any]] = {
    # The defaults: restart no, stop_timeout 10, no hooks.
    "default": {"name": "web01"},
    # Hooks with and without their own timeout, a long stop timeout, on-failure.
    "hooks-on-failure": {
        "name": "app02",
        "restart": "on-failure",
        "stop_timeout": 45,
        "hooks": {
            "prestart": ["/etc/richc/hooks/mount-nfs"],
            "poststart": [{"path": "/usr/local/bin/register", "timeout": 10}],
            "prestop": [{"path": "/usr/local/bin/drain", "timeout": 20.5}],
            "poststop": ["/usr/local/bin/deregister"],
        },
    },
    # always: systemd's start rate limit off, as richc's own supervisor never gives up.
    "always": {"name": "db03", "restart": "always", "init": "systemd"},
}


def render(case: str, root: Path, *, init: str = "busybox") -> systemd_unit.UnitFiles:
    config = cfg.from_dict(CASES[case])
    return systemd_unit.render_files(
        config, HostPaths.from_root(root), init=init, runtime="lxc", richc=RICHC
    )


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("RICHC_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with RICHC_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize("case", sorted(CASES))
def test_dropin_matches_golden(case: str) -> None:
    files = render(case, Path("/"))
    name = CASES[case]["name"]
    assert files.dropin[0] == Path(f"/etc/systemd/system/richc@{name}.service.d/50-richc.conf")
    check_golden(f"{case}.conf", files.dropin[1])


def test_template_and_target_match_golden() -> None:
    files = render("default", Path("/"))
    assert files.template[0] == Path("/etc/systemd/system/richc@.service")
    check_golden("richc@.service", files.template[1])
    check_golden("richc.target", files.target[1])


def test_root_moves_the_files_and_is_passed_to_richc(tmp_path: Path) -> None:
    files = render("default", tmp_path)
    for path, _ in files.all():
        assert path.is_relative_to(tmp_path / "etc/systemd/system")
    text = files.template[1]
    assert f"ExecStart={RICHC} --root {tmp_path} start --foreground %i\n" in text
    assert f"ExecStop={RICHC} --root {tmp_path} stop %i\n" in text


def test_timeouts_add_up_the_hooks_that_run(tmp_path: Path) -> None:
    """Timeouts count every hook the runner would run (built-in, hooks.d, the container's)."""
    from richc.hookrun import stages as hook_stages
    from richc.hookrun.model import DEFAULT_TIMEOUT

    config = cfg.from_dict(CASES["hooks-on-failure"])
    paths = HostPaths.from_root(tmp_path)
    settings = systemd_unit.settings_for(config, paths, "busybox")
    builtin_poststop = len(list((templates_root() / "hooks/builtin/poststop").iterdir()))
    # prestop 20.5 + poststop deregister (default) + the built-in poststop hooks, rounded up
    stop_hooks = 20.5 + DEFAULT_TIMEOUT * (1 + builtin_poststop) + hook_stages.POSTSTOP_MARGIN
    assert settings.stop_timeout == 45 + -(-stop_hooks // 1) + systemd_unit.STOP_MARGIN_SECONDS
    # prestart mount-nfs (default) + poststart 10 + the wait for the init to boot
    start_hooks = DEFAULT_TIMEOUT + 10 + hook_stages.READY_TIMEOUT
    assert settings.start_timeout == systemd_unit.START_BASE_SECONDS + start_hooks
    # Each executable operator hook in hooks.d/prestop adds the default hook timeout.
    (paths.hooks_d / "prestop").mkdir(parents=True)
    for hook in ("10-a", "20-b", "30-not-executable"):
        (paths.hooks_d / "prestop" / hook).write_text("#!/bin/sh\n")
        if hook != "30-not-executable":
            (paths.hooks_d / "prestop" / hook).chmod(0o755)
    longer = systemd_unit.settings_for(config, paths, "busybox")
    assert longer.stop_timeout == settings.stop_timeout + 2 * DEFAULT_TIMEOUT


def templates_root() -> Path:
    from richc.datafiles import hooks_dir

    return hooks_dir().parent


@pytest.mark.parametrize(
    ("policy", "interval"),
    [("no", 300), ("on-failure", 300), ("always", 0)],
)
def test_restart_policy_maps_to_restart(policy: str, interval: int) -> None:
    config = cfg.from_dict({"name": "x1", "restart": policy})
    files = systemd_unit.render_files(
        config, HostPaths.from_root("/"), init="busybox", runtime="lxc", richc=RICHC
    )
    assert f"\nRestart={policy}\n" in files.dropin[1]
    assert f"\nStartLimitIntervalSec={interval}\n" in files.dropin[1]


def test_remove_keeps_an_operators_dropin_and_other_containers(tmp_path: Path) -> None:
    paths = HostPaths.from_root(tmp_path)
    for case in ("default", "always"):
        systemd_unit.write_files(render(case, tmp_path))
    operator = paths.systemd_units / "richc@web01.service.d" / "override.conf"
    operator.write_text("[Service]\nNice=5\n")
    removed = systemd_unit.remove_files(paths, "web01")
    assert removed == [paths.systemd_units / "richc@web01.service.d/50-richc.conf"]
    assert operator.exists(), "the operator's own drop-in is theirs"
    # db03 still uses the template and the target.
    assert (paths.systemd_units / "richc@.service").exists()
    operator.unlink()
    systemd_unit.remove_files(paths, "web01")
    systemd_unit.remove_files(paths, "db03")
    assert not any(paths.systemd_units.rglob("*")), "the last removal takes the shared files"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
@pytest.mark.parametrize("case", sorted(CASES))
def test_systemd_analyze_verify_accepts_installed_units(case: str, tmp_path: Path) -> None:
    # The venv's own richc as ExecStart: verify checks that the binary is executable.
    richc = Path(shutil.which("richc") or Path(sys.executable).with_name("richc"))
    config = cfg.from_dict(CASES[case])
    paths = HostPaths.from_root(tmp_path)
    files = systemd_unit.render_files(config, paths, init="busybox", runtime="lxc", richc=richc)
    systemd_unit.write_files(files)
    unit = systemd_unit.instance_unit(config.name)
    # The trailing ':' appends systemd's own search path, where lxcfs.service,
    # network-online.target and multi-user.target live.
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{paths.systemd_units}:", SYSTEMD_LOG_LEVEL="info")
    for name in (unit, systemd_unit.TARGET_UNIT):
        proc = subprocess.run(
            ["systemd-analyze", "verify", name], env=env, capture_output=True, text=True
        )
        # verify exits 0 on mere warnings (an unknown key, a bad value); any output is a finding.
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout + proc.stderr == "", proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_analyze_verify_catches_a_bad_dropin(tmp_path: Path) -> None:
    """The verify test above can fail: a bad value in the drop-in is reported."""
    richc = Path(sys.executable).with_name("richc")
    paths = HostPaths.from_root(tmp_path)
    files = render("default", tmp_path)
    systemd_unit.write_files(files)
    files.template[0].write_text(files.template[1].replace(str(RICHC), str(richc)))
    files.dropin[0].write_text(files.dropin[1].replace("Restart=no", "Restart=sometimes"))
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{paths.systemd_units}:")
    proc = subprocess.run(
        ["systemd-analyze", "verify", "richc@web01.service"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "sometimes" in proc.stderr


def test_a_template_dropin_does_not_count_as_a_container(tmp_path: Path) -> None:
    paths = HostPaths.from_root(tmp_path)
    systemd_unit.write_files(render("default", tmp_path))
    operator = paths.systemd_units / "richc@.service.d" / "10-site.conf"
    operator.parent.mkdir()
    operator.write_text("[Unit]\nAfter=remote-fs.target\n")
    removed = systemd_unit.remove_files(paths, "web01")
    assert paths.systemd_units / "richc@.service" in removed
    assert operator.exists(), "the operator's template drop-in is theirs to remove"


def test_exec_words_quote_for_systemd() -> None:
    assert systemd_unit.exec_words(["/usr/bin/richc", "--root", "/srv/a b"]) == (
        "/usr/bin/richc --root '/srv/a b'"
    )
    assert systemd_unit.exec_words(["/srv/100%/richc"]) == "/srv/100%%/richc"
