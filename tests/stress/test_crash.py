"""richc SIGKILLed at each step of create, start, stop, rm and set.

The steps are found from the outside: richc runs with --debug, which prints a line on stderr
before each child process (`+ mount -t overlay ...`, `+ .../hooks.d/prestart/10-step`) and
after some steps (`boot actions of /etc/inittab finished`, `cgroup memory... = ...`). The
test reads stderr line by line and kills richc when a given line appears (plus a delay: a
hook here sleeps HOOK_SLEEP seconds, so "0.1 s after its line" is inside the hook), or at a
time after richc started. richc itself has no test hook point.

After each kill: `richc list` works and shows the container in a known state; re-running
the command, or `richc rm --force`, recovers; the container is usable (it starts and runs a
command) or, removed, leaves the host as it was before the case (hostsnap); and a fresh
create of the same name works.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RICHC, _require_root_and_lxc, unique_name
from tests.stress.conftest import install_step_hooks, run_richc, warm
from tests.stress.hostsnap import HostSnapshot, snapshot, wait_settled

pytestmark = [pytest.mark.integration, pytest.mark.stress]

HOOK_SLEEP = 0.3
LOCKS = "run/richc/locks"  # never removed by richc; see test_concurrency
STATES = {"created", "running", "stopped", "broken"}


@dataclass(frozen=True)
class KillPoint:
    """Where to kill: *delay* seconds after the first stderr line matching *step* (or after
    richc started, when *step* is empty); *group*: SIGKILL richc's whole process group
    (it runs in a session of its own: its hooks and mounts die with it), else richc alone."""

    op: str
    step: str = ""
    delay: float = 0.0
    group: bool = False

    @property
    def id(self) -> str:
        where = re.sub(r"[^a-z0-9]+", "-", self.step.lower()).strip("-") or "t0"
        return f"{self.op}@{where}+{self.delay:g}s{'-group' if self.group else ''}"


POINTS = [
    # create: the overlay mount is richc's one child process on a warm root.
    KillPoint("create", r"\+ mount -t overlay"),
    KillPoint("create", r"\+ mount -t overlay", 0.03),
    KillPoint("create", r"\+ mount -t overlay", 0.08),
    KillPoint("create", "", 0.15),
    # start: inside a prestart hook (no init yet), the init booted, inside a poststart hook.
    KillPoint("start", r"hooks\.d/prestart/10-step", 0.1),
    KillPoint("start", r"hooks\.d/prestart/10-step", 0.1, group=True),
    KillPoint("start", r"boot actions of /etc/inittab finished"),
    KillPoint("start", r"hooks\.d/poststart/10-step", 0.1),
    KillPoint("start", r"hooks\.d/poststart/10-step", 0.1, group=True),
    # stop: inside a prestop hook, while the init shuts down, inside poststop hooks.
    KillPoint("stop", r"hooks\.d/prestop/10-step", 0.1),
    KillPoint("stop", r"hooks\.d/prestop/10-step", 0.1, group=True),
    KillPoint("stop", r"hooks\.d/prestop/10-step", HOOK_SLEEP + 0.5),  # init shutting down
    KillPoint("stop", r"poststop/50-stop-record"),
    KillPoint("stop", r"hooks\.d/poststop/10-step", 0.1),
    KillPoint("stop", r"hooks\.d/poststop/10-step", 0.1, group=True),
    # rm of a stopped container: around the overlay's unmount; rm --force of a running one.
    KillPoint("rm", r"\+ umount"),
    KillPoint("rm", "", 0.15),
    # rm --force of a running container kills it; LXC's monitor runs its poststop hooks.
    KillPoint("rm-force", r"\+ umount"),
    KillPoint("rm-force", "", 0.15),
    # set: between two cgroup writes, after them, and at times.
    KillPoint("set", r"cgroup cpu\.cfs_quota_us"),
    KillPoint("set", r"cgroup memory\.limit_in_bytes"),
]

NEW_MEMORY = 96 << 20
SET_ARGS = (f"memory={NEW_MEMORY}", "pids=200", "cpus=1")


@pytest.fixture(scope="module")
def richc_root(tmp_path_factory: pytest.TempPathFactory, image_cache: Path) -> Iterator[Path]:
    """One warmed root for the module (it overrides the integration fixture of that name, so
    the `richc` runner and its clean-up use it), with a sleeping hook at every stage."""
    _require_root_and_lxc()
    root = tmp_path_factory.mktemp("richc-crash") / "root"
    (root / "var/lib/richc").mkdir(parents=True)
    (root / "var/lib/richc/images").symlink_to(image_cache)
    install_step_hooks(root, HOOK_SLEEP)
    warm(root)
    yield root
    for entry in json.loads(run_richc(root, "list", "--format", "json").stdout or "[]"):
        run_richc(root, "rm", "--force", entry["name"], timeout=120)
    run_richc(root, "lxcfs", "stop", timeout=60)


@pytest.fixture(autouse=True)
def _remove_leftovers(richc_root: Path) -> Iterator[None]:
    """A failed case must not spoil the next one's baseline: remove what it left."""
    yield
    for entry in json.loads(run_richc(richc_root, "list", "--format", "json").stdout or "[]"):
        run_richc(richc_root, "rm", "--force", entry["name"], timeout=120)


@dataclass(frozen=True)
class Killed:
    killed: bool  # False: richc finished before the kill point came
    returncode: int
    stderr: str
    seconds: float


def run_and_kill(root: Path, point: KillPoint, args: tuple[str, ...]) -> Killed:
    """Run `richc --debug ARGS` in a session of its own and SIGKILL it at *point*."""
    proc = subprocess.Popen(
        [str(RICHC), "--debug", *args],
        env=dict(os.environ, RICHC_ROOT=str(root)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    t0 = time.monotonic()
    assert proc.stderr is not None
    # A watchdog: a richc that hangs must not hang the suite.
    watchdog = threading.Timer(120, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    lines: list[str] = []
    killed = False

    def kill() -> None:
        nonlocal killed
        if proc.poll() is not None:
            return
        killed = True
        if point.group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)

    try:
        if not point.step:
            timer = threading.Timer(point.delay, kill)
            timer.start()
            lines.extend(proc.stderr)
            timer.cancel()
        else:
            pattern = re.compile(point.step)
            for line in proc.stderr:
                lines.append(line)
                if pattern.search(line.removeprefix("DEBUG: ").removeprefix("INFO: ")):
                    time.sleep(point.delay)
                    kill()
                    lines.extend(proc.stderr)
                    break
        proc.wait()
    finally:
        watchdog.cancel()
    return Killed(killed, proc.returncode, "".join(lines), time.monotonic() - t0)


def cli(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    proc = run_richc(root, *args, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in ok, f"richc {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
    return proc


def listed(root: Path) -> dict[str, dict[str, Any]]:
    """`richc list --format json` by name; it must work whatever state a crash left."""
    entries = json.loads(cli(root, "list", "--format", "json").stdout)
    return {e["name"]: e for e in entries}


def inspect(root: Path, name: str) -> dict[str, Any]:
    data = json.loads(cli(root, "inspect", name).stdout)
    assert isinstance(data, dict)
    return data


def memory_limit(name: str) -> int:
    path = Path(f"/sys/fs/cgroup/memory/lxc.payload.{name}/memory.limit_in_bytes")
    if not path.exists():
        path = Path(f"/sys/fs/cgroup/lxc.payload.{name}/memory.max")
    return int(path.read_text())


def assert_runs(root: Path, name: str) -> None:
    """*name* is running and usable: a command inside sees busybox init as PID 1."""
    info = inspect(root, name)
    assert info["state"] == "running", info
    assert cli(root, "exec", name, "--", "cat", "/proc/1/comm").stdout.strip() == "init"


def assert_host_as_before(root: Path, name: str, before: HostSnapshot) -> None:
    after = wait_settled(root, [name], state_ignore=[LOCKS])
    assert before.differences(after) == {}, f"{before.describe()} -> {after.describe()}"


def prepare(root: Path, op: str, name: str) -> tuple[str, ...]:
    """Bring *name* to where *op* starts; return richc's arguments for *op*."""
    if op != "create":
        cli(root, "create", name, "--from", "busybox", "--memory", "64M")
    if op in ("stop", "rm-force", "set"):
        cli(root, "start", name)
    return {
        "create": ("create", name, "--from", "busybox", "--memory", "64M"),
        "start": ("start", name),
        "stop": ("stop", name, "--timeout", "10"),
        "rm": ("rm", name),
        "rm-force": ("rm", "--force", name),
        "set": ("set", name, *SET_ARGS),
    }[op]


def recover(root: Path, op: str, name: str, args: tuple[str, ...]) -> None:
    """Re-run *op* (or `rm --force`) and check the container is whole again."""
    if op == "create":
        if name in listed(root):
            cli(root, "rm", "--force", name)
        return
    if op == "start":
        again = cli(root, *args, ok=(0, 1))
        if again.returncode == 1:
            assert f"{name} is already running" in again.stderr, again.stderr
        assert_runs(root, name)
    elif op == "stop":
        cli(root, *args)
        info = inspect(root, name)
        assert info["state"] == "stopped" and info["pid"] is None, info
        cli(root, "start", name)
        assert_runs(root, name)
    elif op == "set":
        cli(root, *args)
        info = inspect(root, name)
        assert info["limits"]["memory_bytes"] == NEW_MEMORY, info["limits"]
        assert info["limits"]["pids"] == 200, info["limits"]
        assert memory_limit(name) == NEW_MEMORY
        cli(root, "stop", name, "--timeout", "10")
        cli(root, "start", name)
        assert memory_limit(name) == NEW_MEMORY  # persisted, not only applied live
        assert_runs(root, name)
    # rm, rm-force, and the end of every other case: removal always works.
    gone = cli(root, "rm", "--force", name, ok=(0, 1))
    if gone.returncode == 1:
        assert f"no container named {name}" in gone.stderr, gone.stderr


@pytest.mark.parametrize("point", POINTS, ids=lambda p: p.id)
def test_sigkill_then_recover(richc_root: Path, point: KillPoint) -> None:
    root = richc_root
    name = unique_name("richc-crash")
    before = snapshot(root, [name], state_ignore=[LOCKS])
    args = prepare(root, point.op, name)

    result = run_and_kill(root, point, args)
    print(f"\n{point.id}: killed={result.killed} after {result.seconds:.2f}s")
    if not result.killed or result.returncode == 0:
        # The step line never came, or richc ended inside the delay: the point is stale.
        assert result.returncode == 0, result.stderr
        pytest.fail(f"richc finished before {point.id}:\n{result.stderr}")
    assert result.returncode == -signal.SIGKILL

    # Whatever the crash left, `list` works and names a known state.
    entries = listed(root)
    if name in entries:
        assert entries[name]["state"] in STATES, entries[name]
    else:
        assert point.op in ("create", "rm", "rm-force"), f"{name} vanished after {point.id}"

    recover(root, point.op, name, args)
    assert name not in listed(root)
    assert_host_as_before(root, name, before)

    # The name is free again: a fresh container of that name can be made.
    cli(root, "create", name, "--from", "busybox")
    assert inspect(root, name)["state"] == "created"
    cli(root, "rm", name)
    assert_host_as_before(root, name, before)
