"""sd_notify: the datagram a Type=notify unit waits for, and the supervisor's restart rules."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from richc import config as cfg
from richc.sdnotify import notify
from richc.supervise import MAX_BACKOFF, RestartRules


def test_notify_sends_one_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify(READY=1, STATUS="web01 running")
        assert server.recv(4096) == b"READY=1\nSTATUS=web01 running"


def test_notify_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"richc-test-{id(monkeypatch)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify(STOPPING=1)
        assert server.recv(4096) == b"STOPPING=1"


def test_notify_without_a_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify(READY=1) is False


def test_backoff_doubles_up_to_the_cap() -> None:
    rules = RestartRules(max_restarts=3, delay=0.5)
    assert [rules.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert rules.backoff(40) == MAX_BACKOFF


def test_restart_limits_per_policy() -> None:
    rules = RestartRules(max_restarts=2)
    on_failure = cfg.RestartPolicy.on_failure
    assert [rules.allows(on_failure, n) for n in (1, 2, 3)] == [True, True, False]
    assert not rules.allows(cfg.RestartPolicy.no, 1)
    assert rules.allows(cfg.RestartPolicy.always, 1000)
