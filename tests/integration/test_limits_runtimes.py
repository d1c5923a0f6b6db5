"""The resource-limit tests of test_limits.py, run again on the runc runtime.

The OCI bundle carries the same cgroup files and values the LXC config does (``linux.
resources`` from the spec's cgroup settings, ``process.rlimits`` from its rlimits), so
what a process inside runs into must not depend on the runtime.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import RichcRunner, on_runc
from tests.integration.test_limits import (
    test_cpus_half_holds_two_spinners_to_half_a_cpu,
    test_cpuset_is_what_nproc_sees,
    test_device_throttles_reach_the_host_files,
    test_device_write_bps_slows_direct_writes,
    test_every_limit_reaches_its_cgroup_file,
    test_fork_loop_stops_at_pids_20,
    test_invalid_limits_are_refused_before_anything_is_made,
    test_memory_hog_is_oom_killed_at_32m,
    test_ulimit_nofile_and_nproc,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_cpus_half_holds_two_spinners_to_half_a_cpu",
    "test_cpuset_is_what_nproc_sees",
    "test_device_throttles_reach_the_host_files",
    "test_device_write_bps_slows_direct_writes",
    "test_every_limit_reaches_its_cgroup_file",
    "test_fork_loop_stops_at_pids_20",
    "test_invalid_limits_are_refused_before_anything_is_made",
    "test_memory_hog_is_oom_killed_at_32m",
    "test_ulimit_nofile_and_nproc",
]


@pytest.fixture
def richc(richc: RichcRunner) -> RichcRunner:
    """conftest's runner, creating every container on the runc runtime."""
    return on_runc(richc)
