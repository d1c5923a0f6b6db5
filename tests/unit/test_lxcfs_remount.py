"""The remount report decoding, methods and syscall error helper (no root)."""

from __future__ import annotations

import ctypes
import errno
import json
import os
from pathlib import Path

import pytest

from lxcfs_integration import daemon, syscalls
from lxcfs_integration.remount import Method, Outcome, _report, remount_views
from lxcfs_integration.views import View, ViewKind


def test_report_decodes_per_view_results() -> None:
    data = json.dumps(
        [
            {"target": "/proc/meminfo", "outcome": "replaced", "detached": 1},
            {"target": "/proc/uptime", "outcome": "failed", "error": "Operation not permitted"},
        ]
    ).encode()
    report = _report(9, Method.OPEN_TREE, data)
    assert not report.ok
    assert report.results[0].outcome is Outcome.REPLACED and report.results[0].detached == 1
    assert report.results[1].error == "Operation not permitted"


def test_report_of_a_helper_that_died_is_an_error() -> None:
    assert _report(9, Method.BIND, b"").error == "the remount helper died without a result"
    assert _report(9, Method.BIND, b'{"error": "setns: boom"}').error == "setns: boom"
    assert _report(9, Method.BIND, b"[]").ok


def test_explicit_method_is_kept() -> None:
    assert Method.BIND.resolve() is Method.BIND
    assert Method.AUTO.resolve() in (Method.OPEN_TREE, Method.BIND)


def test_missing_container_is_reported_not_raised(tmp_path: Path) -> None:
    view = View(Path("/h/proc/meminfo"), "/proc/meminfo", ViewKind.FILE)
    report = remount_views(12345, [view], method=Method.BIND, proc=tmp_path)
    assert not report.ok and report.error is not None and "12345" in report.error


def test_check_turns_enosys_into_kernel_too_old() -> None:
    ctypes.set_errno(errno.ENOSYS)
    with pytest.raises(OSError, match="kernel too old") as info:
        syscalls._check(-1, "open_tree", "/x")
    assert info.value.errno == errno.ENOSYS and info.value.filename == "/x"
    ctypes.set_errno(errno.EPERM)
    with pytest.raises(PermissionError, match="move_mount: Operation not permitted"):
        syscalls._check(-1, "move_mount")
    assert syscalls._check(3, "open_tree") == 3


def test_pidfile_of_a_non_lxcfs_process_is_ignored(tmp_path: Path) -> None:
    pidfile = tmp_path / "lxcfs.pid"
    pidfile.write_text(f"{os.getpid()}\n")  # this test process: alive, but not lxcfs
    assert daemon.read_pidfile(pidfile, tmp_path) is None
    pidfile.write_text("garbage")
    assert daemon.read_pidfile(pidfile, tmp_path) is None
    assert not daemon.is_lxcfs_for(os.getpid(), tmp_path)


def test_manager_predicates_and_systemd_only_for_default_home(tmp_path: Path) -> None:
    assert not daemon.Manager.FOREIGN.may_stop() and daemon.Manager.SPAWNED.may_stop()
    assert not daemon.want_systemd(tmp_path)
