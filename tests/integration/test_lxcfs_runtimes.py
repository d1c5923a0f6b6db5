"""The richc-level lxcfs tests of test_lxcfs_cli.py, run again on the runc runtime.

The views are binds the OCI bundle carries (``mounts``), the remount after a SIGKILLed
lxcfs enters the container through its init's namespaces, and the watch and the
stop-the-last-lxcfs logic only look at richc's state: none of it may depend on the runtime.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import RichcRunner, on_runc
from tests.integration.test_lxcfs_cli import (
    lxcfs_home,
    test_no_lxcfs_container_sees_the_host,
    test_removing_the_last_container_stops_the_lxcfs_richc_started,
    test_sigkilled_lxcfs_is_recovered_by_remount_without_restarts,
    test_unavailable_lxcfs_warns_unless_required,
    test_views_follow_the_limits_live,
    test_watch_recovers_by_itself,
)

pytestmark = pytest.mark.integration

__all__ = [
    "lxcfs_home",
    "test_no_lxcfs_container_sees_the_host",
    "test_removing_the_last_container_stops_the_lxcfs_richc_started",
    "test_sigkilled_lxcfs_is_recovered_by_remount_without_restarts",
    "test_unavailable_lxcfs_warns_unless_required",
    "test_views_follow_the_limits_live",
    "test_watch_recovers_by_itself",
]


@pytest.fixture
def richc(richc: RichcRunner) -> RichcRunner:
    """conftest's runner, creating every container on the runc runtime."""
    return on_runc(richc)
