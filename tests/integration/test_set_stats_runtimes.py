"""The `richc set` and `richc stats` tests of test_set.py and test_stats.py, run again on
the runc runtime.

Both find the container's cgroup from its init's pid and the directory the runtime made
for it (runc's cgroupsPath, ``richc.payload.NAME``, recorded at start): live writes, their
rollback and every figure of stats must not depend on the runtime.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import RichcRunner, on_runc
from tests.integration.test_limits import M, cgroup_version, host_file, init_pid
from tests.integration.test_set import (
    test_a_refused_write_rolls_back_the_ones_before_it,
    test_an_invalid_key_changes_nothing,
    test_removing_a_limit_lifts_it_live,
    test_set_changes_a_running_container_at_once_and_survives_restart,
    test_set_env_rewrites_the_env_files,
    test_set_on_a_stopped_container_only_persists,
)
from tests.integration.test_stats import (
    one,
    test_cpu_percent_of_a_busy_container,
    test_host_network_container_reports_no_traffic_of_its_own,
    test_list_shows_memory_and_cpu_usage,
    test_stats_json_follows_the_container,
    test_stats_lists_running_ones_and_shows_named_stopped_ones,
    test_watch_streams_json_lines_until_interrupted,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_a_refused_write_rolls_back_the_ones_before_it",
    "test_an_invalid_key_changes_nothing",
    "test_cpu_percent_of_a_busy_container",
    "test_host_network_container_reports_no_traffic_of_its_own",
    "test_list_shows_memory_and_cpu_usage",
    "test_removing_a_limit_lifts_it_live",
    "test_set_changes_a_running_container_at_once_and_survives_restart",
    "test_set_env_rewrites_the_env_files",
    "test_set_on_a_stopped_container_only_persists",
    "test_stats_json_follows_the_container",
    "test_stats_lists_running_ones_and_shows_named_stopped_ones",
    "test_watch_streams_json_lines_until_interrupted",
]


@pytest.fixture
def richc(richc: RichcRunner) -> RichcRunner:
    """conftest's runner, creating every container on the runc runtime."""
    return on_runc(richc)


def move_init_below_its_cgroup(richc: RichcRunner, name: str, controller: str) -> None:
    """Inside the container, move its init into a new child of its own *controller* cgroup,
    as an init that manages its cgroup tree may (its cgroup namespace makes that the root)."""
    hierarchy = next(
        m.name for m in Path("/sys/fs/cgroup").iterdir() if controller in m.name.split(",")
    )
    script = (
        "mkdir -p /run/richc-test-cg && "
        f"mount -t cgroup -o {hierarchy} cgroup /run/richc-test-cg && "
        "mkdir /run/richc-test-cg/moved && echo 1 > /run/richc-test-cg/moved/cgroup.procs; "
        "s=$?; umount /run/richc-test-cg; exit $s"
    )
    richc("exec", name, "--", "sh", "-c", script)


def test_stats_and_set_use_the_runtimes_cgroup_when_the_init_moves_below_it(
    richc: RichcRunner, name: str
) -> None:
    if cgroup_version() != 1:
        pytest.skip("moves the init between v1 cgroups (v2 forbids it below a limit)")
    richc("create", name, "--no-lxcfs", "--memory", "64M", "--pids", "30", "--start")
    pid = init_pid(richc, name)
    scope = host_file(pid, "pids.max").parent
    assert scope.name == f"richc.payload.{name}"
    for controller in ("memory", "pids"):
        move_init_below_its_cgroup(richc, name, controller)
    # The init's own cgroup is now an unlimited child; the container's limits are above it.
    assert host_file(pid, "pids.max").parent == scope / "moved"
    assert (scope / "moved/pids.max").read_text().strip() == "max"

    item = one(richc, name, "--interval", "0")
    assert item["memory"]["limit_bytes"] == 64 * M
    assert item["pids"]["limit"] == 30 and item["pids"]["current"] >= 1

    richc("set", name, "memory=96M", "pids=60")
    memory_scope = host_file(pid, "memory.limit_in_bytes").parent.parent
    assert int((memory_scope / "memory.limit_in_bytes").read_text()) == 96 * M
    assert (scope / "pids.max").read_text().strip() == "60"
    assert (scope / "moved/pids.max").read_text().strip() == "max"
