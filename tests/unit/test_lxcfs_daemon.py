"""Where systemd is PID 1, lxcfs for the default home is its distribution unit (no root).

This host has no systemd as PID 1, so the unit path is checked against a recording
systemctl; the spawned path is tested for real in tests/integration/test_lxcfs_daemon.py.
Every call that could reach the real /var/lib/lxcfs (mount checks, unmounts) is replaced.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from lxcfs_integration import daemon, process
from lxcfs_integration.errors import LxcfsError, LxcfsStartError
from lxcfs_integration.health import HomeState, HomeStatus
from lxcfs_integration.views import DEFAULT_HOME


class FakeSystemctl:
    def __init__(self, *, start_code: int = 0, main_pid: str = "4242\n") -> None:
        self.calls: list[list[str]] = []
        self.start_code = start_code
        self.main_pid = main_pid

    def __call__(
        self, argv: Sequence[str], *, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        if argv[1] == "show":
            return subprocess.CompletedProcess(list(argv), 0, self.main_pid, "")
        code = self.start_code if argv[1] == "start" else 0
        return subprocess.CompletedProcess(list(argv), code, "", "Unit lxcfs.service failed.\n")


@pytest.fixture
def systemd_host(monkeypatch: pytest.MonkeyPatch) -> FakeSystemctl:
    fake = FakeSystemctl()
    monkeypatch.setattr(daemon, "systemd_booted", lambda: True)
    monkeypatch.setattr(process, "run_tool", fake)
    monkeypatch.setattr(daemon, "home_status", lambda home: HomeStatus(home, HomeState.ABSENT))
    monkeypatch.setattr(daemon, "wait_healthy", lambda home, timeout=0, pid=None: None)
    monkeypatch.setattr(daemon, "unmount_dead", lambda home: 0)
    monkeypatch.setattr(
        daemon, "spawn_lxcfs", lambda argv, log: pytest.fail(f"spawned {argv} under systemd")
    )
    return fake


def test_default_home_under_systemd_starts_the_unit(
    systemd_host: FakeSystemctl, tmp_path: Path
) -> None:
    assert daemon.want_systemd(DEFAULT_HOME)
    started = daemon.start(DEFAULT_HOME, tmp_path / "run")
    assert systemd_host.calls[0] == ["systemctl", "start", "lxcfs.service"]
    assert started == daemon.LxcfsProcess(DEFAULT_HOME, daemon.Manager.SYSTEMD, 4242)
    assert not (tmp_path / "run").exists()  # no pid file of ours: the unit owns the process
    daemon.stop(started)
    assert systemd_host.calls[-1] == ["systemctl", "stop", "lxcfs.service"]


def test_a_private_home_is_spawned_even_under_systemd(
    systemd_host: FakeSystemctl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The unit's ExecStart serves /var/lib/lxcfs only.
    assert not daemon.want_systemd(tmp_path / "home")
    spawned: list[list[str]] = []

    def spawn(argv: Sequence[str], log: Path) -> int:
        spawned.append(list(argv))
        return 777

    monkeypatch.setattr(daemon, "spawn_lxcfs", spawn)
    monkeypatch.setattr(daemon, "find_binary", lambda: "/usr/bin/lxcfs")
    started = daemon.start(tmp_path / "home", tmp_path / "run")
    assert systemd_host.calls == []
    assert started.manager is daemon.Manager.SPAWNED and started.pid == 777
    assert spawned == [
        ["/usr/bin/lxcfs", "-p", str(tmp_path / "run/lxcfs.pid"), str(tmp_path / "home")]
    ]


def test_a_failing_unit_is_an_error_pointing_at_its_journal(
    systemd_host: FakeSystemctl, tmp_path: Path
) -> None:
    systemd_host.start_code = 1
    with pytest.raises(LxcfsStartError) as info:
        daemon.start(DEFAULT_HOME, tmp_path / "run")
    assert "Unit lxcfs.service failed." in info.value.message
    assert info.value.hint == "see journalctl -u lxcfs.service"


def test_a_foreign_lxcfs_is_never_stopped() -> None:
    with pytest.raises(LxcfsError, match="not started by richc"):
        daemon.stop(daemon.LxcfsProcess(DEFAULT_HOME, daemon.Manager.FOREIGN, 1))
