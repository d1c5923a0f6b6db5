"""From a recorded host to a runtime config: each fixture tree's facts, as richc's start
reads them (``probe_facts``), through ``build_spec`` to the rendered LXC config and OCI
``config.json``.

The expected choices are written out per host from what its kernel has (the tree's
``proc/self/ns`` and cgroup mounts), not taken from the probe: a 2.6.32 or 3.10 kernel has
no cgroup namespace, so nothing may rely on one (no ``lxc.mount.auto = cgroup:mixed:force``,
no cgroup namespace in ``config.json``, a read-only cgroup mount); v1 hosts get
``lxc.cgroup.*`` keys and OCI v1 resources, pure v2 hosts ``lxc.cgroup2.*`` and unified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from richc import config as cfg
from richc.hostfacts import probe_facts
from richc.runtime.lxc import config_text
from richc.runtime.oci_config import render_config
from richc.spec import ContainerSpec, Paths, build_spec
from tests.fixtures.hosts.support import FIXTURES, HOSTS, RECORDED_HOST

MEMORY = 256 * 1024 * 1024


@dataclass(frozen=True)
class Expected:
    cgroup_version: int
    cgroup_ns: bool
    cgroup_mount: str  # the cgroup entry of lxc.mount.auto


EXPECTED = {
    "linux-2.6.32-squeeze": Expected(1, False, "cgroup:mixed"),
    "linux-3.10-rhel7": Expected(1, False, "cgroup:mixed"),
    "linux-4.19-buster": Expected(1, True, "cgroup:mixed:force"),
    "linux-5.10-bullseye": Expected(2, True, "cgroup:mixed"),
    "linux-6.1-debian-vm": Expected(2, True, "cgroup:mixed"),
    "linux-6.18-host": Expected(1, True, "cgroup:mixed:force"),
}
HOST_NAMES = (*FIXTURES, RECORDED_HOST)


def spec_for(host: str) -> ContainerSpec:
    config = cfg.from_dict({"name": "c1", "from": "busybox", "limits": {"memory": "256M"}})
    paths = Paths(
        rootfs=Path("/var/lib/richc/containers/c1/rootfs"),
        log_dir=Path("/var/log/richc/c1"),
    )
    return build_spec(config, cfg.Init.busybox, paths, probe_facts(str(HOSTS / host)))


def lxc_lines(spec: ContainerSpec) -> list[str]:
    # The arguments richc.runtime.lxc.LxcRuntime.render passes, as in test_oci.py.
    text = config_text(spec)
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def oci_config(spec: ContainerSpec) -> dict[str, Any]:
    return render_config(spec, cgroups_path="/richc.payload.c1")


def test_every_fixture_tree_has_expectations() -> None:
    trees = {p.name for p in HOSTS.iterdir() if p.is_dir() and p.name.startswith("linux-")}
    assert trees == set(EXPECTED) == set(HOST_NAMES)


@pytest.mark.parametrize("host", HOST_NAMES)
def test_expectations_match_what_the_tree_records(host: str) -> None:
    """The table above is about the recorded kernel, checked on the tree's raw files."""
    tree, want = HOSTS / host, EXPECTED[host]
    ns = tree / "proc/self/ns"
    assert (ns / "cgroup").exists() is want.cgroup_ns
    mounts = (tree / "proc/self/mountinfo").read_text().splitlines()
    # Any v1 hierarchy makes limits v1 (hybrid hosts keep memory there; squeeze mounts no
    # memory controller at all, so there richc's limit check refuses --memory).
    v1 = [m for m in mounts if " - cgroup " in m]
    v2 = [m for m in mounts if " - cgroup2 " in m]
    assert want.cgroup_version == (1 if v1 else 2 if v2 else 0)


@pytest.mark.parametrize("host", HOST_NAMES)
def test_lxc_config_fits_the_recorded_kernel(host: str) -> None:
    want, lines = EXPECTED[host], lxc_lines(spec_for(host))
    prefix, other = ("lxc.cgroup2.", "lxc.cgroup.") if want.cgroup_version == 2 else (
        "lxc.cgroup.", "lxc.cgroup2."
    )  # fmt: skip
    memory_key = "memory.max" if want.cgroup_version == 2 else "memory.limit_in_bytes"
    assert f"{prefix}{memory_key} = {MEMORY}" in lines
    assert f"{prefix}devices.deny = a" in lines
    assert not [line for line in lines if line.startswith(other)]
    assert f"lxc.mount.auto = proc:mixed sys:ro {want.cgroup_mount}" in lines
    # Without a cgroup namespace LXC must be told to keep the host's (it would unshare one).
    assert ("lxc.namespace.keep = cgroup" in lines) is not want.cgroup_ns


@pytest.mark.parametrize("host", HOST_NAMES)
def test_oci_config_fits_the_recorded_kernel(host: str) -> None:
    want, config = EXPECTED[host], oci_config(spec_for(host))
    namespaces = [ns["type"] for ns in config["linux"]["namespaces"]]
    assert namespaces[:5] == ["mount", "pid", "uts", "ipc", "network"]
    assert ("cgroup" in namespaces) is want.cgroup_ns
    resources = config["linux"]["resources"]
    if want.cgroup_version == 2:
        assert resources["unified"] == {"memory.max": str(MEMORY)}
        assert "memory" not in resources
    else:
        assert resources["memory"]["limit"] == MEMORY
        assert "unified" not in resources
    cgroup = [m for m in config["mounts"] if m["destination"] == "/sys/fs/cgroup"]
    assert len(cgroup) == 1, cgroup
    # Only a cgroup namespace confines the container to its own subtree: without one the
    # whole host hierarchy would be writable, so it is mounted read-only.
    assert ("ro" in cgroup[0]["options"]) is not want.cgroup_ns


def test_io_weight_renders_to_the_file_the_host_has(tmp_path: Path) -> None:
    # The 6.1 guest has iocost but no BFQ: its cgroups have io.weight and no io.bfq.weight,
    # and an LXC config naming the file the kernel lacks aborts the start.
    import shutil

    tree = tmp_path / "host"
    shutil.copytree(HOSTS / "linux-6.1-debian-vm", tree, symlinks=True)
    (tree / "sys/fs/cgroup/io.cost.qos").write_text("")
    config = cfg.from_dict({"name": "c1", "from": "busybox", "limits": {"io_weight": 300}})
    paths = Paths(
        rootfs=Path("/var/lib/richc/containers/c1/rootfs"),
        log_dir=Path("/var/log/richc/c1"),
    )
    facts = probe_facts(str(tree))
    assert facts.io_weight_file == "io.weight"
    spec = build_spec(config, cfg.Init.busybox, paths, facts)
    assert "lxc.cgroup2.io.weight = 300" in lxc_lines(spec)
