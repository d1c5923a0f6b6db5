"""Golden-file tests: one ContainerSpec per case, rendered as the LXC config and as the OCI
``config.json``. Both runtimes render only from the spec, so a change in either shows up
here side by side.

Regenerate after an intended change with ``RICHC_UPDATE_GOLDEN=1 pytest tests/unit/test_oci.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from richc import config as cfg
from richc.errors import HostUnsupported
from richc.runtime.lxc import config_text
from richc.runtime.oci_config import ALL_CAPS, bounding_set, oci_signal, render_config
from richc.spec import ContainerSpec, HostFacts, Mount, Nic, Paths, build_spec

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RICHC_UPDATE_GOLDEN") == "1"
CALLBACK = "/usr/bin/python3 -I -m richc.hookrun --root / poststop"

LXCFS = "/var/lib/lxcfs"
LXCFS_MOUNTS = (
    Mount(f"{LXCFS}/proc/meminfo", "/proc/meminfo"),
    Mount(f"{LXCFS}/proc/uptime", "/proc/uptime"),
    Mount(f"{LXCFS}/proc/pressure/memory", "/proc/pressure/memory"),
    Mount(f"{LXCFS}/sys/devices/system/cpu", "/sys/devices/system/cpu", kind="dir"),
)
HYBRID_FORCE = HostFacts(cgroup_version=1, cgroup_namespace=True, cgroup_mount="cgroup:mixed:force")
OLD_KERNEL = HostFacts(cgroup_version=1, cgroup_namespace=False, cgroup_mount="cgroup:mixed")
V2 = HostFacts(cgroup_version=2, cgroup_namespace=True, cgroup_mount="cgroup:mixed")
V2_NO_CGROUPNS = HostFacts(cgroup_version=2, cgroup_namespace=False, cgroup_mount=None)

# name -> (config mapping, init, host facts, mounts)
CASES: dict[str, tuple[dict[str, Any], cfg.Init, HostFacts, tuple[Mount, ...]]] = {
    "busybox-default": ({"name": "c1"}, cfg.Init.busybox, HostFacts(), ()),
    "limits": (
        {"name": "c2", "limits": {"memory": "256M", "cpus": 1.5, "cpuset": "0-1", "pids": 100}},
        cfg.Init.busybox,
        HostFacts(),
        (),
    ),
    "hybrid-force": ({"name": "c8", "limits": {"memory": "256M"}}, cfg.Init.systemd,
                     HYBRID_FORCE, ()),
    "lxcfs": ({"name": "c3", "limits": {"memory": "512M"}}, cfg.Init.busybox, HostFacts(),
              LXCFS_MOUNTS),
    "old-kernel-no-cgroupns": (
        {"name": "c4", "limits": {"memory": "128M", "pids": 50}},
        cfg.Init.sysvinit,
        OLD_KERNEL,
        (),
    ),
    "cgroup-v2": (
        {"name": "c5", "limits": {"memory": "1G", "cpus": 0.5, "cpuset": "1", "pids": 200}},
        cfg.Init.systemd,
        V2,
        LXCFS_MOUNTS,
    ),
    "cgroup-v2-no-cgroupns": ({"name": "c6", "limits": {"memory": "64M"}}, cfg.Init.busybox,
                              V2_NO_CGROUPNS, ()),
    "host-net-stop-signal": (
        {"name": "c7", "hostname": "web", "net": {"mode": "host"}, "stop_signal": "SIGRTMIN+4",
         "env": {"A": "1"}},
        cfg.Init.busybox,
        HostFacts(apparmor=True),
        (),
    ),
}  # fmt: skip


def make_spec(case: str) -> ContainerSpec:
    data, init, host, mounts = CASES[case]
    config = cfg.from_dict(data)
    name = config.name
    paths = Paths(
        rootfs=Path(f"/var/lib/richc/containers/{name}/rootfs"),
        log_dir=Path(f"/var/log/richc/{name}"),
    )
    spec = build_spec(config, init, paths, host, mounts=mounts)
    return replace(spec, poststop_callback=CALLBACK)


def render_lxc(spec: ContainerSpec) -> str:
    # The same arguments richc.runtime.lxc.LxcRuntime.render passes (less its cache marker).
    return config_text(spec)


def render_oci(spec: ContainerSpec) -> str:
    config = render_config(
        spec,
        cgroups_path=f"/richc.payload.{spec.name}",
        console=f"/run/richc/containers/{spec.name}/console",
    )
    return json.dumps(config, indent=2) + "\n"


def check_golden(path: Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing; run with RICHC_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{path} differs; RICHC_UPDATE_GOLDEN=1 regenerates it"


@pytest.mark.parametrize("case", sorted(CASES))
def test_lxc_config_golden(case: str) -> None:
    check_golden(GOLDEN / "lxc" / f"{case}.conf", render_lxc(make_spec(case)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_oci_config_golden(case: str) -> None:
    check_golden(GOLDEN / "oci" / f"{case}.json", render_oci(make_spec(case)))


# -- properties the golden files should keep; each states a reason, not a snapshot -------


def oci(case: str, **kwargs: Any) -> dict[str, Any]:
    spec = make_spec(case)
    return render_config(spec, cgroups_path=f"/richc.payload.{spec.name}", **kwargs)


def test_init_is_pid1_without_a_terminal_and_with_the_spec_env() -> None:
    config = oci("host-net-stop-signal")
    assert config["process"]["args"] == ["/sbin/init"]
    assert config["process"]["terminal"] is False
    assert config["process"]["env"] == ["container=lxc", "A=1"]
    assert config["hostname"] == "web"
    assert config["root"] == {"path": "/var/lib/richc/containers/c7/rootfs", "readonly": False}


def test_user_annotations_join_richcs_own_in_config_json() -> None:
    config = cfg.from_dict({"name": "db1", "annotations": {"com.example.role": "db"}})
    paths = Paths(rootfs=Path("/r/rootfs"), log_dir=Path("/l"))
    spec = build_spec(config, cfg.Init.busybox, paths, HostFacts())
    annotations = render_config(spec, cgroups_path="/richc.payload.db1")["annotations"]
    assert annotations["com.example.role"] == "db"
    assert annotations["org.richc.name"] == "db1" and annotations["org.richc.init"] == "busybox"


def test_limits_map_to_oci_resources_on_v1_and_unified_on_v2() -> None:
    v1 = oci("limits")["linux"]["resources"]
    assert v1["memory"] == {"limit": 256 << 20}
    assert v1["cpu"] == {"period": 100_000, "quota": 150_000, "cpus": "0-1"}
    assert v1["pids"] == {"limit": 100}
    v2 = oci("cgroup-v2")["linux"]["resources"]
    # The same cgroup files and values LXC writes with lxc.cgroup2.* keys.
    assert v2["unified"] == {
        "memory.max": str(1 << 30),
        "cpu.max": "50000 100000",
        "cpuset.cpus": "1",
        "pids.max": "200",
    }
    assert "memory" not in v2


def test_v1_io_files_map_to_block_io() -> None:
    spec = replace(
        make_spec("busybox-default"),
        limits=cfg.Limits(
            io_weight=300,
            device_read_bps=(("8:0", 1048576), ("8:16", 2048)),
            memory_reservation=1024,
        ),
        io_weight_file="blkio.bfq.weight",
    )
    resources = render_config(spec, cgroups_path="/x")["linux"]["resources"]
    assert resources["blockIO"] == {
        "weight": 300,
        "throttleReadBpsDevice": [
            {"major": 8, "minor": 0, "rate": 1048576},
            {"major": 8, "minor": 16, "rate": 2048},
        ],
    }
    assert resources["memory"] == {"reservation": 1024}
    v2 = replace(
        make_spec("cgroup-v2"),
        limits=cfg.Limits(
            device_read_bps=(("8:0", 100),),
            device_write_iops=(("8:0", 5),),
            device_write_bps=(("8:16", 7),),
            io_weight=50,
        ),
        io_weight_file="io.weight",
    )
    resources = render_config(v2, cgroups_path="/x")["linux"]["resources"]
    assert resources["blockIO"] == {
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 5}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 7}],
    }
    assert resources["unified"] == {"io.weight": "50"}


def test_devices_are_denied_except_the_spec_allow_list() -> None:
    devices = oci("busybox-default")["linux"]["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 136, "access": "rwm"} in devices  # /dev/pts/*
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in devices


def test_namespaces_follow_the_host_facts() -> None:
    def types(case: str) -> list[str]:
        return [ns["type"] for ns in oci(case)["linux"]["namespaces"]]

    assert types("busybox-default") == ["mount", "pid", "uts", "ipc", "network", "cgroup"]
    assert "cgroup" not in types("old-kernel-no-cgroupns")
    assert "network" not in types("host-net-stop-signal")  # net: host shares the host's


def test_cgroup_filesystem_mounted_where_lxc_mounts_one() -> None:
    def cgroup_mount(case: str) -> list[str] | None:
        for mount in oci(case)["mounts"]:
            if mount["destination"] == "/sys/fs/cgroup":
                return list(mount["options"])
        return None

    # v1 in a cgroup namespace: LXC 5 leaves /sys/fs/cgroup to the init, unless forced
    # (what the probe picks on hybrid hosts), and then the container's own subtree is
    # writable.
    assert cgroup_mount("busybox-default") is None
    options = cgroup_mount("hybrid-force")
    assert options is not None and "rw" in options
    # Old kernel, no cgroup namespace: the container must not write its parents' files.
    options = cgroup_mount("old-kernel-no-cgroupns")
    assert options is not None and "ro" in options
    # Pure v2 in a cgroup namespace: its own subtree, writable, as LXC's cgroup:mixed.
    options = cgroup_mount("cgroup-v2")
    assert options is not None and "rw" in options
    # Pure v2 without a cgroup namespace: LXC cannot mount cgroup2; nor does runc here.
    assert cgroup_mount("cgroup-v2-no-cgroupns") is None


def test_lxcfs_views_are_binds_and_runc_refused_proc_paths_are_left_out() -> None:
    mounts = {m["destination"]: m for m in oci("lxcfs")["mounts"]}
    assert mounts["/proc/meminfo"] == {
        "destination": "/proc/meminfo",
        "type": "bind",
        "source": f"{LXCFS}/proc/meminfo",
        "options": ["bind", "rprivate"],
    }
    assert mounts["/sys/devices/system/cpu"]["source"] == f"{LXCFS}/sys/devices/system/cpu"
    assert "/proc/pressure/memory" not in mounts  # runc refuses it (checkProcMount)
    # and the LXC config does carry it: a documented difference (test_parity.py)
    assert "proc/pressure/memory" in render_lxc(make_spec("lxcfs"))


def test_console_is_a_bind_of_the_keepers_pty_only_when_given() -> None:
    with_console = {m["destination"] for m in oci("busybox-default", console="/run/c")["mounts"]}
    assert "/dev/console" in with_console
    without = {m["destination"] for m in oci("busybox-default")["mounts"]}
    assert "/dev/console" not in without


def test_capabilities_are_all_but_the_dropped_and_those_richc_lacks() -> None:
    caps = set(oci("busybox-default")["process"]["capabilities"]["bounding"])
    assert "CAP_SYS_ADMIN" in caps and "CAP_SYS_MODULE" not in caps and "CAP_SYS_TIME" not in caps
    # richc without CAP_SYS_RESOURCE in its own bounding set cannot hand it on.
    lacking = bounding_set("CapBnd:\t000001fffeffffff\n")
    assert "sys_resource" not in lacking and "sys_admin" in lacking
    bounded = set(oci("busybox-default", bounding=lacking)["process"]["capabilities"]["bounding"])
    assert bounded == caps - {"CAP_SYS_RESOURCE"}
    assert bounding_set("no such line") == frozenset(ALL_CAPS)


def test_signals_by_name_number_and_realtime_offset() -> None:
    assert oci_signal("SIGUSR2") == 12
    assert oci_signal("USR2") == 12
    assert oci_signal("15") == 15
    assert oci_signal("SIGRTMIN+3") == 37
    assert oci_signal("SIGPWR") == 30
    with pytest.raises(ValueError, match="unknown signal"):
        oci_signal("SIGNOPE")


def test_nics_stay_out_of_config_json_and_unmappable_v1_files_are_refused() -> None:
    nic = Nic(0, "br0", "02:00:00:00:00:01", "rc01234567", "10.0.0.2/24", "10.0.0.1")
    spec = replace(make_spec("busybox-default"), network="nics", nics=(nic,))
    config = render_config(spec, cgroups_path="/x")
    assert {"type": "network"} in config["linux"]["namespaces"]  # richc makes the veth
    assert "10.0.0.2" not in json.dumps(config)
    assert "lxc.net.0.ipv4.address = 10.0.0.2/24 10.0.0.255" in config_text(spec)
    assert "lxc.net.0.veth.pair = rc01234567" in config_text(spec)
    spec = replace(
        make_spec("busybox-default"), limits=cfg.Limits(io_weight=100), io_weight_file="io.weight"
    )
    with pytest.raises(HostUnsupported, match=r"io\.weight"):
        render_config(spec, cgroups_path="/x")
