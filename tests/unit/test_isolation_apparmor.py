"""AppArmor: detection against fake sysfs trees, and the profile text (this host has no
AppArmor, so the text is all that can be checked here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from isolation.apparmor import (
    ENABLED_PARAM,
    NESTING_PROFILE_NAME,
    PROFILES_FILE,
    load_profile,
    lxc_apparmor_keys,
    oci_apparmor,
    render_profile,
    status,
)
from isolation.errors import IsolationError, ToolFailed


def test_status_without_the_module(tmp_path: Path) -> None:
    found = status(tmp_path)
    assert not found and "no AppArmor" in found.reason


def test_status_disabled_and_without_securityfs(tmp_path: Path) -> None:
    param = tmp_path / ENABLED_PARAM
    param.parent.mkdir(parents=True)
    param.write_text("N\n")
    assert "disabled" in status(tmp_path).reason
    param.write_text("Y\n")
    assert "securityfs" in status(tmp_path).reason
    (tmp_path / PROFILES_FILE).parent.mkdir(parents=True)
    (tmp_path / PROFILES_FILE).write_text("")
    found = status(tmp_path)
    assert bool(found) == (shutil.which("apparmor_parser") is not None)


def test_this_host_reports_a_reason() -> None:
    found = status()
    assert found.reason


def test_profile_text() -> None:
    text = render_profile()
    assert text.count("{") == text.count("}")
    assert "profile richc-container flags=(attach_disconnected,mediate_deleted) {" in text
    for rule in (
        "deny /proc/sysrq-trigger rwklx,",
        "deny /sys/kernel/** wklx,",
        "deny /sys/fs/cgroup/*/release_agent w,",
        "deny mount fstype=securityfs,",
        "deny mount options=(ro, remount) -> /,",
        "mount fstype=cgroup2 -> /sys/fs/cgroup/**,",
    ):
        assert rule in text
    # every rule line ends with a comma (apparmor_parser's grammar)
    body = text[text.index("{") + 1 : text.rindex("}")]
    rules = [line.strip() for line in body.splitlines()]
    assert all(r.endswith(",") for r in rules if r and not r.startswith("#"))
    assert "change_profile" not in text
    nesting = render_profile(NESTING_PROFILE_NAME, nesting=True)
    assert "profile richc-container-nesting flags=" in nesting
    for rule in (
        "change_profile -> richc-container//&*,",
        "mount fstype=sysfs,",
        "deny /dev/.lxc/proc/** rwklx,",
        "deny mount fstype=proc -> /proc/**,",
    ):
        assert rule in nesting
    # AppArmor's deny wins over allow: the nesting variant must not keep the sysfs deny.
    assert "deny mount fstype=sysfs" not in nesting and "deny mount fstype=sysfs," in text


def test_profile_name_is_checked() -> None:
    with pytest.raises(ValueError):
        render_profile("two words")


def test_keys() -> None:
    assert lxc_apparmor_keys(None) == [("lxc.apparmor.profile", "unconfined")]
    assert lxc_apparmor_keys("richc-container") == [("lxc.apparmor.profile", "richc-container")]
    assert oci_apparmor(None) == {}
    assert oci_apparmor("richc-container") == {"apparmorProfile": "richc-container"}


@pytest.mark.skipif(shutil.which("apparmor_parser") is None, reason="apparmor_parser missing")
def test_apparmor_parser_accepts_the_profile(tmp_path: Path) -> None:
    # -Q: parse and compile only, load nothing into the kernel
    result = subprocess.run(
        ["apparmor_parser", "-Q", "-K"], input=render_profile(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_load_profile_feeds_the_parser_and_reports_its_error(tmp_path: Path) -> None:
    """apparmor_parser is missing here: a stand-in script records what it is given."""
    seen = tmp_path / "seen"
    good = tmp_path / "good-parser"
    good.write_text(f'#!/bin/sh\necho "$@" > {seen}.args\ncat > {seen}\n')
    good.chmod(0o755)
    load_profile(render_profile(), parser=str(good))
    assert seen.read_text() == render_profile()
    assert Path(f"{seen}.args").read_text().split() == ["--replace"]
    bad = tmp_path / "bad-parser"
    bad.write_text('#!/bin/sh\necho "AppArmor parser error at line 7: syntax" >&2\nexit 1\n')
    bad.chmod(0o755)
    with pytest.raises(ToolFailed) as exc:
        load_profile("profile x {}", parser=str(bad))
    assert "line 7" in str(exc.value) and exc.value.returncode == 1


def test_load_profile_without_a_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(IsolationError) as exc:
        load_profile(render_profile())
    assert exc.value.hint
