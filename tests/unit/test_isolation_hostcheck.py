"""The host report's pure parts, against fake /proc trees."""

from __future__ import annotations

from pathlib import Path

from isolation.hostcheck import (
    MAX_USER_NAMESPACES,
    SECCOMP_ACTIONS,
    proc_visible,
    seccomp,
    user_namespaces,
)


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def test_user_namespaces(tmp_path: Path) -> None:
    assert "CONFIG_USER_NS" in user_namespaces(tmp_path).detail
    write(tmp_path, MAX_USER_NAMESPACES, "0\n")
    found = user_namespaces(tmp_path)
    assert not found and "set it above 0" in found.detail
    write(tmp_path, MAX_USER_NAMESPACES, "15000\n")
    assert user_namespaces(tmp_path) and "15000" in user_namespaces(tmp_path).detail


def test_seccomp(tmp_path: Path) -> None:
    assert not seccomp(tmp_path)
    write(tmp_path, SECCOMP_ACTIONS, "kill_process kill_thread trap allow\n")
    assert "errno" in seccomp(tmp_path).detail and not seccomp(tmp_path)
    write(tmp_path, SECCOMP_ACTIONS, "kill_process errno allow log\n")
    assert seccomp(tmp_path)


def test_this_host() -> None:
    assert user_namespaces() and seccomp()


def test_proc_visible_says_what_to_do_inside_a_masked_container(tmp_path: Path) -> None:
    assert not proc_visible(tmp_path) and "cannot read" in proc_visible(tmp_path).detail
    write(
        tmp_path,
        "proc/self/mountinfo",
        "92 90 0:47 / /proc rw - proc proc rw\n"
        "100 92 0:6 /null /proc/kcore ro - devtmpfs devtmpfs rw\n"
        "110 90 0:60 / /sys ro - sysfs sysfs rw\n",
    )
    found = proc_visible(tmp_path)
    assert not found and "/proc/kcore" in found.detail and "--nesting" in found.detail
    assert proc_visible()  # this host's own /proc and /sys
