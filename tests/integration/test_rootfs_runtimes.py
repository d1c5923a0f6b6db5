"""The rich-rootfs boot tests of test_rootfs.py, run again on the runc runtime.

test_rootfs.py runs them on the default runtime (lxc on this host); here the same test
functions run with every container created by `--runtime runc`, so Debian with systemd
(to `running`, then a clean shutdown), Debian with SysV init, a legacy VM tarball,
busybox and an init-less tree under --init dumb-init boot the same way on both. The
bridged-NIC test is not repeated: the runc runtime refuses `net: bridge` (README, "The
runc runtime").
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import RichcRunner, on_runc
from tests.integration.test_rootfs import (
    test_busybox_init_is_pid1_and_stops_cleanly,
    test_debian_systemd_boots_running_and_stops_cleanly,
    test_debian_sysvinit_boots_and_stops_cleanly,
    test_dumb_init_runs_the_command_reaps_orphans_and_stops_cleanly,
    test_legacy_vm_tarball_is_fixed_up_and_boots,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_busybox_init_is_pid1_and_stops_cleanly",
    "test_debian_systemd_boots_running_and_stops_cleanly",
    "test_debian_sysvinit_boots_and_stops_cleanly",
    "test_dumb_init_runs_the_command_reaps_orphans_and_stops_cleanly",
    "test_legacy_vm_tarball_is_fixed_up_and_boots",
]


@pytest.fixture
def richc(richc: RichcRunner) -> RichcRunner:
    """conftest's runner, creating every container on the runc runtime."""
    return on_runc(richc)
