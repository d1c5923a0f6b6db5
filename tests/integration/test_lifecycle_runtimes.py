"""The lifecycle, exec and stop tests on real containers, once per runtime (lxc and runc).

Everything is checked from the user's side: what `richc exec` shows inside, what `inspect`
says, what is left on the host afterwards. The runc runtime must leave nothing behind:
no runc state under the root's run directory, no console keeper, no cgroup.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RichcRunner, unique_name

pytestmark = pytest.mark.integration

RUNTIMES = ("lxc", "runc")
MEMORY_V1 = Path("/sys/fs/cgroup/memory")


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def inspect(richc: RichcRunner, name: str) -> dict[str, Any]:
    data = json.loads(richc("inspect", name).stdout)
    assert isinstance(data, dict)
    return data


def wait_for(what: str, check: Callable[[], object], limit: float = 30.0) -> object:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def host_memory_limit(pid: int) -> int | None:
    """The memory limit of *pid*'s cgroup, read on the host (v1 memory or v2 memory.max)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return int((MEMORY_V1 / path.lstrip("/") / "memory.limit_in_bytes").read_text())
        if hierarchy == "0" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            value = (Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.max").read_text()
            return None if value.strip() == "max" else int(value)
    return None


def keepers(richc_root: Path) -> list[int]:
    """Console keepers (runc runtime) still running for containers of this root."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"richc.runtime.console_keeper" in cmdline and str(richc_root).encode() in cmdline:
            out.append(int(proc.name))
    return out


def runc_containers(richc_root: Path) -> list[str]:
    state = richc_root / "run/richc/runc"
    return sorted(p.name for p in state.iterdir()) if state.is_dir() else []


def assert_nothing_left(richc_root: Path, name: str, pid: int) -> None:
    wait_for("the init to be reaped", lambda: not Path(f"/proc/{pid}").exists(), 15)
    wait_for("the console keeper to exit", lambda: not keepers(richc_root), 15)
    assert name not in runc_containers(richc_root)
    assert not (MEMORY_V1 / f"richc.payload.{name}").exists()


def test_full_lifecycle_with_init_as_pid1(
    richc: RichcRunner, richc_root: Path, name: str, runtime: str
) -> None:
    richc("create", name, "--runtime", runtime, "--memory", "256M", "--env", "GREETING=hi you")
    info = inspect(richc, name)
    assert info["state"] == "created" and info["runtime"] == runtime

    richc("start", name)
    info = inspect(richc, name)
    assert info["state"] == "running"
    pid = info["pid"]
    assert isinstance(pid, int) and Path(f"/proc/{pid}").exists()

    ps = richc("exec", name, "--", "ps").stdout.splitlines()
    pid1 = next(line.split() for line in ps[1:] if line.split()[0] == "1")
    assert pid1[-1] == "init", ps
    assert richc("exec", name, "--", "cat", "/proc/1/comm").stdout.strip() == "init"
    assert richc("exec", name, "--", "hostname").stdout.strip() == name
    greeting = richc("exec", name, "--", "sh", "-c", ". /etc/profile; echo $GREETING").stdout
    assert greeting.strip() == "hi you"
    assert host_memory_limit(pid) == 256 << 20

    stop = richc("stop", name)
    assert "killed" not in stop.stderr
    info = inspect(richc, name)
    assert info["state"] == "stopped" and info["pid"] is None
    assert_nothing_left(richc_root, name, pid)

    richc("start", name)  # a stopped container starts again
    assert richc("exec", name, "--", "true").returncode == 0
    first = inspect(richc, name)["pid"]
    richc("restart", name)
    info = inspect(richc, name)
    assert info["state"] == "running" and info["pid"] != first
    assert richc("exec", name, "--", "cat", "/proc/1/comm").stdout.strip() == "init"
    richc("stop", name)
    richc("rm", name)
    assert richc("inspect", name, check=False).returncode == 1
    assert_nothing_left(richc_root, name, info["pid"])
    assert not (richc_root / "var/lib/richc/containers" / name).exists()


def test_exec_passes_exit_codes_stdio_user_and_cwd_through(
    richc: RichcRunner, name: str, runtime: str
) -> None:
    richc("create", name, "--runtime", runtime, "--start")
    assert richc("exec", name, "--", "sh", "-c", "exit 7", check=False).returncode == 7
    assert richc("exec", name, "--", "sh", "-c", "kill -9 $$", check=False).returncode == 137
    missing = richc("exec", name, "--", "no-such-command", check=False)
    assert missing.returncode == 127 and "not found" in missing.stderr
    not_exec = richc("exec", name, "--", "/etc/passwd", check=False)
    assert not_exec.returncode == 126 and "not executable" in not_exec.stderr
    whoami = richc(
        "exec", name, "--user", "nobody", "--cwd", "/tmp", "--", "sh", "-c", "id -u; pwd"
    )
    assert whoami.stdout.split() == ["65534", "/tmp"]
    env = richc("exec", name, "--env", "X=from flag", "--", "sh", "-c", "echo $X")
    assert env.stdout.strip() == "from flag"
    echoed = richc("exec", name, "--", "sh", "-c", "cat; echo err >&2", input="from stdin\n")
    assert echoed.stdout == "from stdin\n" and echoed.stderr == "err\n"
    richc("stop", name)
    stopped = richc("exec", name, "--", "true", check=False)
    assert stopped.returncode == 125 and "not running" in stopped.stderr


def test_stop_kills_an_init_that_ignores_the_signal(
    richc: RichcRunner, richc_root: Path, name: str, runtime: str, tmp_path: Path
) -> None:
    # PID 1 of a pid namespace ignores signals it has no handler for; busybox init has none
    # for SIGURG, so this init never shuts down and must be killed after the timeout.
    config = tmp_path / "c.yaml"
    config.write_text(f"name: {name}\nruntime: {runtime}\nstop_signal: SIGURG\n")
    richc("create", "--config", str(config), "--start")
    pid = inspect(richc, name)["pid"]
    started = time.monotonic()
    stop = richc("stop", name, "--timeout", "2")
    assert time.monotonic() - started >= 2
    assert "(killed)" in stop.stderr and "did not shut down" in stop.stderr
    assert inspect(richc, name)["state"] == "stopped"
    assert_nothing_left(richc_root, name, pid)


def test_console_has_a_getty_that_stays_up(richc: RichcRunner, name: str, runtime: str) -> None:
    # Under runc the console is the keeper's pty, as LXC's is its monitor's: without one,
    # busybox init would respawn the getty on /dev/console once a second, forever.
    richc("create", name, "--runtime", runtime, "--start")
    wait_for("the login prompt", lambda: f"{name} login:" in richc("logs", name).stdout, 15)

    def getty_pid() -> str:
        ps = richc("exec", name, "--", "ps").stdout.splitlines()
        return next((line.split()[0] for line in ps if "getty" in line), "")

    first = wait_for("a getty", getty_pid)
    time.sleep(2.5)  # busybox init respawns a failing getty every second
    assert getty_pid() == first
    tty = richc("exec", name, "--", "sh", "-c", "ls -l /dev/console").stdout
    assert tty.startswith("c"), tty  # a character device: a pty, not the host's console


def test_init_that_exits_by_itself_is_cleaned_up_with_poststop(
    richc: RichcRunner, richc_root: Path, name: str, runtime: str
) -> None:
    richc("create", name, "--runtime", runtime, "--start")
    pid = inspect(richc, name)["pid"]
    richc("exec", name, "--", "poweroff", check=False)
    wait_for("the container to stop", lambda: inspect(richc, name)["state"] == "stopped")
    stops = richc_root / "var/log/richc" / name / "stops.log"
    wait_for("the poststop hook", lambda: stops.exists() and stops.read_text().strip())
    assert_nothing_left(richc_root, name, pid)
    richc("start", name)
    assert richc("exec", name, "--", "true").returncode == 0


def test_init_killed_from_outside(
    richc: RichcRunner, richc_root: Path, name: str, runtime: str
) -> None:
    richc("create", name, "--runtime", runtime, "--start")
    pid = inspect(richc, name)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for("the container to stop", lambda: inspect(richc, name)["state"] == "stopped")
    stops = richc_root / "var/log/richc" / name / "stops.log"
    wait_for("the poststop hook", lambda: stops.exists() and stops.read_text().strip())
    assert_nothing_left(richc_root, name, pid)
    richc("start", name)
    assert inspect(richc, name)["state"] == "running"
    richc("rm", "--force", name)
    assert not (richc_root / "var/lib/richc/containers" / name).exists()


def test_without_lxc_bindings_auto_picks_runc_and_the_lifecycle_works(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    # A shadowing package ahead on PYTHONPATH makes `import lxc` fail in every richc run.
    shadow = tmp_path / "shadow"
    (shadow / "lxc").mkdir(parents=True)
    (shadow / "lxc/__init__.py").write_text('raise ImportError("lxc hidden by the test")\n')
    no_lxc = {"PYTHONPATH": str(shadow)}

    doctor = json.loads(richc("doctor", "--format", "json", extra_env=no_lxc).stdout)
    assert doctor["runtimes"]["lxc"]["bindings"] is False
    assert doctor["features"]["runtime"] == "runc"

    richc("create", name, "--runtime", "auto", "--memory", "128M", extra_env=no_lxc)
    assert inspect(richc, name)["runtime"] == "runc"
    richc("start", name, extra_env=no_lxc)
    pid = inspect(richc, name)["pid"]
    assert host_memory_limit(pid) == 128 << 20
    out = richc("exec", name, "--", "cat", "/proc/1/comm", extra_env=no_lxc).stdout
    assert out.strip() == "init"
    code = richc("exec", name, "--", "sh", "-c", "exit 3", check=False, extra_env=no_lxc)
    assert code.returncode == 3
    assert "killed" not in richc("stop", name, extra_env=no_lxc).stderr
    richc("start", name, extra_env=no_lxc)
    richc("rm", "--force", name, extra_env=no_lxc)
    assert_nothing_left(richc_root, name, pid)
    # The lxc runtime itself says what is missing rather than failing obscurely.
    lxc = richc("create", unique_name(), "--runtime", "lxc", "--start", check=False,
                extra_env=no_lxc)  # fmt: skip
    assert lxc.returncode == 1 and "lxc bindings cannot be imported" in lxc.stderr
