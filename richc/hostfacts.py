"""The few host facts the spec needs, read cheaply on every start.

The full probe behind `richc doctor` lives in :mod:`richc.probe`; this is its fast subset.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from richc.spec import HostFacts


@cache
def host_facts(root: str = "/") -> HostFacts:
    base = Path(root)
    # A pure cgroup v2 host mounts cgroup2 at /sys/fs/cgroup itself; hybrid hosts (v1
    # controllers plus an empty v2 at /sys/fs/cgroup/unified) still take lxc.cgroup.* keys.
    version = 2 if (base / "sys/fs/cgroup/cgroup.controllers").exists() else 1
    try:
        apparmor = (base / "sys/module/apparmor/parameters/enabled").read_text().startswith("Y")
    except OSError:
        apparmor = False
    return HostFacts(
        cgroup_version=version,
        apparmor=apparmor,
        cgroup_namespace=(base / "proc/self/ns/cgroup").exists(),
        cpu_count=os.cpu_count() or 1,
    )
