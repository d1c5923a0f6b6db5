"""Many richc processes at once: distinct containers in parallel leak nothing, racing creates
of one name have exactly one winner, and `set` racing `stop` leaves a consistent container.

Sized for 2 shared cores: a pool of RICHC_STRESS_WORKERS (8) threads, each running richc as
a subprocess. Durations are printed (run with -s to see them).
"""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RichcRunner, unique_name
from tests.stress.conftest import Outcome, Timed
from tests.stress.hostsnap import snapshot, wait_settled

pytestmark = [pytest.mark.integration, pytest.mark.stress]

LIFECYCLES = 50
RACERS = 20
# richc never removes run/richc/locks/NAME.lock (see test_rm_removes_its_lock_file):
# compared on its own, so the leak test checks everything else.
LOCKS = "run/richc/locks"


def _no_traceback(outcome: Outcome) -> None:
    assert "Traceback" not in outcome.stderr, str(outcome)


def _report(title: str, steps: dict[str, list[float]], wall: float) -> None:
    print(f"\n{title}: wall {wall:.1f}s")
    for step, times in steps.items():
        if times:
            print(
                f"  {step:<8} n={len(times):<3} median {statistics.median(times) * 1000:7.0f} ms"
                f"  max {max(times) * 1000:7.0f} ms"
            )


def _lifecycle(timed: Timed, name: str) -> list[Outcome]:
    """create, start, exec, stop, rm of one container; stops at the first failure."""
    done: list[Outcome] = []
    for args in (
        ("create", name, "--from", "busybox", "--memory", "64M"),
        ("start", name),
        ("exec", name, "--", "cat", "/proc/1/comm"),
        ("stop", name, "--timeout", "10"),
        ("rm", name),
    ):
        outcome = timed(*args)
        done.append(outcome)
        if outcome.returncode != 0:
            break
    return done


def test_50_concurrent_lifecycles_leak_nothing(
    timed: Timed, pool: ThreadPoolExecutor, warm_root: Path
) -> None:
    names = [unique_name("richc-stress") for _ in range(LIFECYCLES)]
    before = snapshot(warm_root, names, state_ignore=[LOCKS])
    t0 = time.monotonic()
    results = list(pool.map(lambda n: _lifecycle(timed, n), names))
    wall = time.monotonic() - t0

    failures = [str(o) for run in results for o in run if o.returncode != 0]
    assert not failures, f"{len(failures)} failed commands:\n" + "\n".join(failures)
    for run in results:
        assert run[2].stdout.strip() == "init", str(run[2])  # exec reached the container's PID 1
        for outcome in run:
            _no_traceback(outcome)
    steps: dict[str, list[float]] = {}
    for run in results:
        for outcome in run:
            steps.setdefault(outcome.args[0], []).append(outcome.seconds)
    _report(f"{LIFECYCLES} lifecycles, {pool._max_workers} workers", steps, wall)

    after = wait_settled(warm_root, names, state_ignore=[LOCKS])
    print(f"  before: {before.describe()}\n  after:  {after.describe()}")
    assert before.differences(after) == {}
    listed = timed("list", "--format", "json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], str(listed)


def test_rm_removes_its_lock_file(richc: RichcRunner, richc_root: Path, name: str) -> None:
    richc("create", name, "--from", "busybox")
    richc("rm", name)
    assert not (richc_root / "run/richc/locks" / f"{name}.lock").exists()


def test_20_creates_of_one_name_have_one_winner(
    timed: Timed, pool: ThreadPoolExecutor, warm_root: Path, name: str
) -> None:
    t0 = time.monotonic()
    outcomes = list(pool.map(lambda _: timed("create", name, "--from", "busybox"), range(RACERS)))
    wall = time.monotonic() - t0
    _report(f"{RACERS} creates of one name", {"create": [o.seconds for o in outcomes]}, wall)

    winners = [o for o in outcomes if o.returncode == 0]
    losers = [o for o in outcomes if o.returncode != 0]
    assert len(winners) == 1, "\n".join(map(str, outcomes))
    for loser in losers:
        _no_traceback(loser)
        assert loser.returncode == 1, str(loser)
        assert f"error: container {name} already exists" in loser.stderr, str(loser)
    # The winner's container is whole: it starts and runs.
    listed = json.loads(timed("list", "--format", "json").stdout)
    assert [c["name"] for c in listed] == [name]
    assert listed[0]["state"] == "created", listed
    assert timed("start", name).returncode == 0
    assert timed("exec", name, "--", "true").returncode == 0
    assert timed("rm", "--force", name).returncode == 0


def _inspect(timed: Timed, name: str) -> dict[str, Any]:
    outcome = timed("inspect", name)
    assert outcome.returncode == 0, str(outcome)
    data = json.loads(outcome.stdout)
    assert isinstance(data, dict)
    return data


def _memory_limit(name: str) -> int:
    # The live value, from the kernel: liblxc's payload cgroup (v1 memory hierarchy, or v2).
    for path in (
        Path(f"/sys/fs/cgroup/memory/lxc.payload.{name}/memory.limit_in_bytes"),
        Path(f"/sys/fs/cgroup/lxc.payload.{name}/memory.max"),
    ):
        if path.exists():
            return int(path.read_text())
    raise AssertionError(f"no memory cgroup for {name}")


@pytest.mark.parametrize("set_delay", [0.0, 0.05, 0.15])
def test_set_racing_stop_stays_consistent(
    timed: Timed, pool: ThreadPoolExecutor, warm_root: Path, name: str, set_delay: float
) -> None:
    """`set memory=` and `stop` at once, the set a little later in each case: each either
    succeeds or refuses clearly, and what inspect shows is what the next start applies."""
    assert timed("create", name, "--from", "busybox", "--memory", "64M").returncode == 0
    assert timed("start", name).returncode == 0
    new = 96 << 20

    def delayed_set() -> Outcome:
        time.sleep(set_delay)
        return timed("set", name, f"memory={new}")

    stop_f = pool.submit(timed, "stop", name, "--timeout", "10")
    set_f = pool.submit(delayed_set)
    stop_o, set_o = stop_f.result(), set_f.result()
    print(f"\nset after {set_delay}s: {stop_o.seconds:.2f}s stop, {set_o.seconds:.2f}s set")
    for outcome in (stop_o, set_o):
        _no_traceback(outcome)
        assert outcome.returncode in (0, 1), str(outcome)
        if outcome.returncode == 1:
            assert outcome.stderr.startswith("error: "), str(outcome)
    assert stop_o.returncode == 0, str(stop_o)  # a set never makes a stop fail

    info = _inspect(timed, name)
    assert info["state"] == "stopped" and info["pid"] is None, info
    expected = new if set_o.returncode == 0 else 64 << 20
    assert info["limits"]["memory_bytes"] == expected, (info["limits"], str(set_o))
    # What was persisted is what the next start applies.
    assert timed("start", name).returncode == 0
    assert _memory_limit(name) == expected
    assert timed("rm", "--force", name).returncode == 0


def test_snapshot_sees_a_running_container(richc: RichcRunner, warm_root: Path, name: str) -> None:
    """The leak checks can fail: a running container shows in every kind that applies."""
    before = snapshot(warm_root, [name], state_ignore=[LOCKS])
    richc("create", name, "--from", "busybox")
    richc("start", name)
    running = snapshot(warm_root, [name], state_ignore=[LOCKS])
    grown = before.differences(running)
    assert any(f"containers/{name}/rootfs (overlay)" in m for m in grown["mounts"]["added"])
    assert any("fuse.lxcfs" in m for m in grown["mounts"]["added"])  # lxcfs started for it
    assert {f"lxc.payload.{name}", f"lxc.monitor.{name}"} <= {
        Path(c).name for c in grown["cgroups"]["added"]
    }
    assert any("lxc monitor" in p for p in grown["processes"]["added"])
    assert any(name in f for f in grown["state_files"]["added"])
    richc("rm", "--force", name)
    assert before.differences(wait_settled(warm_root, [name], state_ignore=[LOCKS])) == {}
