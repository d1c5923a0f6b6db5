"""`richc start --foreground` on real LXC containers: stop by signal, init deaths, restarts.

Each test starts the supervisor as a subprocess under a private --root and always kills it
(by pid) and removes the container at the end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import RICHC, RichcRunner

pytestmark = pytest.mark.integration

EXIT_STOPPED, EXIT_INIT_DIED = 0, 7
HOOKS_LANDED = importlib.util.find_spec("richc.hookrun") is not None


def wait_for(what: str, check: Callable[[], object], limit: float = 60.0) -> object:
    """Poll *check* until it returns something true; fail (not hang) after *limit* seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


class Supervisor:
    def __init__(self, root: Path, name: str, log: Path, *args: str, env: dict[str, str]) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [str(RICHC), "start", "--foreground", name, *args],
            env={**os.environ, "RICHC_ROOT": str(root), **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait(self, limit: float = 120) -> int:
        try:
            return self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the supervisor did not exit; its log:\n{self.output()}")


@pytest.fixture
def supervise(richc_root: Path, tmp_path: Path) -> Iterator[Callable[..., Supervisor]]:
    started: list[Supervisor] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> Supervisor:
        log = tmp_path / f"supervisor-{len(started)}.log"
        sup = Supervisor(richc_root, name, log, *args, env=env or {})
        started.append(sup)
        return sup

    yield start
    for sup in started:  # the richc fixture then removes the containers
        if sup.proc.poll() is None:
            sup.proc.kill()
            sup.proc.wait()


def inspect(richc: RichcRunner, name: str) -> dict[str, object]:
    data = json.loads(richc("inspect", name).stdout)
    assert isinstance(data, dict)
    return data


def running_pid(richc: RichcRunner, name: str, other_than: object = None) -> int:
    def check() -> int | None:
        data = inspect(richc, name)
        pid = data["pid"]
        ok = data["state"] == "running" and isinstance(pid, int) and pid != other_than
        return pid if ok else None  # type: ignore[return-value]

    pid = wait_for(f"{name} to run", check)
    assert isinstance(pid, int)
    return pid


def lxc_cgroups(name: str) -> list[Path]:
    """LXC's cgroups for *name* in every hierarchy (monitor and payload)."""
    found: list[Path] = []
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        for depth in ("", "*/", "*/*/"):
            found += hierarchy.glob(f"{depth}lxc.monitor.{name}")
            found += hierarchy.glob(f"{depth}lxc.payload.{name}")
    return found


def kill_init(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def hook_script(path: Path, marker: Path) -> str:
    path.write_text(f'#!/bin/sh\necho "$0 ran" >> {marker}\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture(params=["lxc", "runc"])
def runtime(request: pytest.FixtureRequest) -> str:
    """The runtime to supervise: the same supervision must hold on both."""
    if request.param == "runc" and shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    return str(request.param)


def test_sigterm_stops_the_container_cleanly(
    richc: RichcRunner,
    supervise: Callable[..., Supervisor],
    name: str,
    tmp_path: Path,
    runtime: str,
) -> None:
    marker = tmp_path / "hooks.out"
    prestop = hook_script(tmp_path / "prestop", marker)
    poststop = hook_script(tmp_path / "poststop", marker)
    richc("create", name, "--runtime", runtime, "--restart", "on-failure",
          "--hook", f"prestop={prestop}", "--hook", f"poststop={poststop}")  # fmt: skip
    sup = supervise(name)
    running_pid(richc, name)
    # The user's view: the container runs and answers.
    assert richc("exec", name, "--", "cat", "/proc/1/comm").stdout.strip() in ("init", "busybox")
    # TESTING.md's trap: the long-lived supervisor must not live in LXC's monitor cgroups.
    cgroups = Path(f"/proc/{sup.proc.pid}/cgroup").read_text()
    assert "lxc.monitor" not in cgroups and "lxc.payload" not in cgroups, cgroups

    sup.proc.send_signal(signal.SIGTERM)
    assert sup.wait() == EXIT_STOPPED, sup.output()
    assert f"{name} stopped" in sup.output()
    assert inspect(richc, name)["state"] == "stopped"
    assert lxc_cgroups(name) == [], "LXC's cgroups must not outlive the container"
    if HOOKS_LANDED:
        assert marker.read_text().splitlines() == [f"{prestop} ran", f"{poststop} ran"]


def test_an_init_killed_from_outside_exits_init_died(
    richc: RichcRunner, supervise: Callable[..., Supervisor], name: str, runtime: str
) -> None:
    richc("create", name, "--runtime", runtime)  # restart: no
    sup = supervise(name)
    kill_init(running_pid(richc, name))
    assert sup.wait() == EXIT_INIT_DIED, sup.output()
    assert "init died (restart: no)" in sup.output()
    assert inspect(richc, name)["state"] == "stopped"
    assert lxc_cgroups(name) == []


def test_on_failure_restarts_with_backoff_up_to_the_limit(
    richc: RichcRunner, supervise: Callable[..., Supervisor], name: str, runtime: str
) -> None:
    richc("create", name, "--runtime", runtime, "--restart", "on-failure")
    sup = supervise(name, "--max-restarts", "2", "--restart-delay", "0.2")
    pid = running_pid(richc, name)
    for _attempt in (1, 2):
        kill_init(pid)
        pid = running_pid(richc, name, other_than=pid)
        # Restarted for real: the new init serves commands.
        assert richc("exec", name, "--", "true").returncode == 0
        # Restarts start from a forked child too: the supervisor stays out of LXC's cgroups.
        assert "lxc." not in Path(f"/proc/{sup.proc.pid}/cgroup").read_text()
    kill_init(pid)
    assert sup.wait() == EXIT_INIT_DIED, sup.output()
    out = sup.output()
    assert "restart 1 of 2 in 0.2 s" in out and "restart 2 of 2 in 0.4 s" in out, out
    assert "gave up after 2 restarts" in out
    assert inspect(richc, name)["state"] == "stopped"


def test_no_restart_after_an_explicit_stop(
    richc: RichcRunner, supervise: Callable[..., Supervisor], name: str
) -> None:
    richc("create", name, "--restart", "always")
    sup = supervise(name, "--restart-delay", "0.2")
    running_pid(richc, name)
    richc("stop", name)
    assert sup.wait() == EXIT_STOPPED, sup.output()
    assert "stopped on request" in sup.output()
    assert "restart 1" not in sup.output()
    assert inspect(richc, name)["state"] == "stopped"
    assert lxc_cgroups(name) == []


def test_a_stop_during_the_backoff_cancels_the_restart(
    richc: RichcRunner, supervise: Callable[..., Supervisor], name: str
) -> None:
    richc("create", name, "--restart", "on-failure")
    # A long back-off, so the stop surely lands in it (the supervisor wakes on the marker
    # check after the wait, or at once on SIGTERM: both paths are covered below).
    sup = supervise(name, "--restart-delay", "3")
    kill_init(running_pid(richc, name))
    wait_for("the back-off", lambda: "restart 1 of 5 in 3.0 s" in sup.output())
    richc("stop", name)
    assert sup.wait() == EXIT_STOPPED, sup.output()
    assert "not restarting" in sup.output()
    assert inspect(richc, name)["state"] == "stopped"

    sup = supervise(name, "--restart-delay", "30")
    kill_init(running_pid(richc, name))
    wait_for("the back-off", lambda: "in 30.0 s" in sup.output())
    sup.proc.send_signal(signal.SIGTERM)
    assert sup.wait() == EXIT_STOPPED, sup.output()
    assert inspect(richc, name)["state"] == "stopped"


def test_ready_is_notified_and_restarts_are_left_to_the_manager(
    richc: RichcRunner, supervise: Callable[..., Supervisor], name: str, tmp_path: Path
) -> None:
    marker = tmp_path / "hooks.out"
    poststart = hook_script(tmp_path / "poststart", marker)
    richc("create", name, "--restart", "on-failure", "--hook", f"poststart={poststart}")
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(60)
        sup = supervise(name, env={"NOTIFY_SOCKET": str(path)})
        message = server.recv(4096).decode()
        assert "READY=1" in message.splitlines()
        assert f"MAINPID={sup.proc.pid}" in message
        if HOOKS_LANDED:  # READY comes after the poststart hooks, not before
            assert marker.read_text().splitlines() == [f"{poststart} ran"]
        # READY means running: the container answers at once.
        assert richc("exec", name, "--", "true").returncode == 0
        kill_init(running_pid(richc, name))
        # systemd restarts by Restart=on-failure; the supervisor itself must not.
        assert sup.wait() == EXIT_INIT_DIED, sup.output()
        assert "the service manager applies the restart policy" in sup.output()
        with contextlib.suppress(TimeoutError):
            server.settimeout(1)
            while True:
                assert "READY=1" not in server.recv(4096).decode().splitlines()
    assert inspect(richc, name)["state"] == "stopped"


def test_an_already_running_container_is_adopted(
    richc: RichcRunner, supervise: Callable[..., Supervisor], name: str
) -> None:
    richc("create", name, "--restart", "on-failure")
    richc("start", name)
    pid = running_pid(richc, name)
    sup = supervise(name)
    wait_for("the supervisor to adopt it", lambda: "supervising it" in sup.output())
    assert running_pid(richc, name) == pid, "adopting must not restart the container"
    sup.proc.send_signal(signal.SIGINT)
    assert sup.wait() == EXIT_STOPPED, sup.output()
    assert inspect(richc, name)["state"] == "stopped"


def test_richc_restart_keeps_the_supervision(
    richc: RichcRunner, supervise: Callable[..., Supervisor], name: str
) -> None:
    richc("create", name, "--restart", "on-failure")
    sup = supervise(name)
    first = running_pid(richc, name)
    richc("restart", name)
    second = running_pid(richc, name, other_than=first)
    wait_for("the supervisor to follow", lambda: "supervising its new init" in sup.output())
    assert sup.proc.poll() is None, sup.output()
    # It watches the new init: killing that one is an init death, restarted by the policy.
    kill_init(second)
    running_pid(richc, name, other_than=second)
    assert "restart 1 of 5" in sup.output()
    richc("stop", name)
    assert sup.wait() == EXIT_STOPPED, sup.output()


def test_a_reboot_from_inside_is_followed_not_taken_for_a_death(
    richc: RichcRunner, supervise: Callable[..., Supervisor], name: str
) -> None:
    # LXC restarts the container itself on an in-container reboot (runc has no reboot).
    richc("create", name)  # restart: no, so a death would end the supervision
    sup = supervise(name)
    first = running_pid(richc, name)
    richc("exec", name, "--", "reboot")
    second = running_pid(richc, name, other_than=first)
    assert richc("exec", name, "--", "cat", "/proc/1/comm").stdout.strip() == "init"
    listed = json.loads(richc("list", "--format", "json").stdout)
    assert [(c["state"], c["pid"]) for c in listed if c["name"] == name] == [("running", second)]
    wait_for("the supervisor to follow", lambda: "rebooted from inside" in sup.output())
    assert sup.proc.poll() is None, sup.output()
    stop = richc("stop", name, "--timeout", "10")
    assert "killing" not in stop.stderr, stop.stderr
    assert sup.wait() == EXIT_STOPPED, sup.output()
    assert inspect(richc, name)["state"] == "stopped"
