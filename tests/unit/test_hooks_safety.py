"""Hook files someone other than root could change are refused, naming the path and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from richc.hookrun import safety

OTHER_UID = 65534  # nobody


def make_hook(directory: Path, mode: int = 0o755) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    hook = directory / "hook"
    hook.write_text("#!/bin/sh\n")
    hook.chmod(mode)
    return hook


def as_euid() -> int:
    """The euid to check as: ours, so files we create count as properly owned."""
    return os.geteuid()


def test_a_private_executable_passes(tmp_path: Path) -> None:
    safety.check(make_hook(tmp_path / "d"), euid=as_euid())


def test_world_writable_file_is_refused_with_chmod_fix(tmp_path: Path) -> None:
    hook = make_hook(tmp_path / "d", 0o757)
    with pytest.raises(safety.UnsafeHook) as info:
        safety.check(hook, euid=as_euid())
    assert str(hook) in info.value.message and "world-writable" in info.value.message
    assert info.value.hint == f"fix it with `chmod o-w {hook}`"


def test_hook_in_world_writable_directory_is_refused(tmp_path: Path) -> None:
    hook = make_hook(tmp_path / "d")
    hook.parent.chmod(0o777)
    with pytest.raises(safety.UnsafeHook) as info:
        safety.check(hook, euid=as_euid())
    assert f"its directory {hook.parent} is world-writable" in info.value.message
    assert info.value.hint == f"fix it with `chmod o-w {hook.parent}`"


def test_sticky_world_writable_directory_is_accepted(tmp_path: Path) -> None:
    hook = make_hook(tmp_path / "d")
    hook.parent.chmod(0o1777)  # like /tmp: nobody else can swap our file
    safety.check(hook, euid=as_euid())


def test_symlink_is_checked_at_its_target(tmp_path: Path) -> None:
    target = make_hook(tmp_path / "real", 0o777)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(safety.UnsafeHook, match="world-writable"):
        safety.check(link, euid=as_euid())


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_file_not_owned_by_root_is_refused_when_running_as_root(tmp_path: Path) -> None:
    hook = make_hook(tmp_path / "d")
    os.chown(hook, OTHER_UID, -1)
    with pytest.raises(safety.UnsafeHook) as info:
        safety.check(hook, euid=0)
    assert f"owned by uid {OTHER_UID}" in info.value.message
    assert info.value.hint and f"chown root {hook}" in info.value.hint


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_directory_not_owned_by_root_is_refused_when_running_as_root(tmp_path: Path) -> None:
    hook = make_hook(tmp_path / "d")
    os.chown(hook.parent, OTHER_UID, -1)
    with pytest.raises(safety.UnsafeHook, match=r"its directory .* is owned by uid 65534"):
        safety.check(hook, euid=0)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(safety.UnsafeHook, match="cannot be checked"):
        safety.check(tmp_path / "absent", euid=as_euid())
