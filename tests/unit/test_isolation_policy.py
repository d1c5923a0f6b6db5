"""The policy layer: one call per runtime, with and without each switch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from isolation import masked, seccomp
from isolation.idmap import IdMap
from isolation.policy import SecurityPolicy, apply_oci, default_policy, lxc_keys

IDMAP = IdMap.of(131072)
BASE: dict[str, Any] = {
    "process": {"args": ["/sbin/init"]},
    "linux": {
        "namespaces": [{"type": "pid"}, {"type": "mount"}],
        "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        "maskedPaths": [],
    },
}


def test_lxc_keys_for_the_default_unprivileged_container() -> None:
    keys = lxc_keys(default_policy(IDMAP, runtime_idmaps_rootfs=True), "/c/seccomp")
    assert keys[:3] == [
        ("lxc.idmap", "u 0 131072 65536"),
        ("lxc.idmap", "g 0 131072 65536"),
        ("lxc.rootfs.options", "idmap=container"),
    ]
    assert ("lxc.seccomp.profile", "/c/seccomp") in keys
    assert ("lxc.apparmor.profile", "unconfined") in keys
    assert keys[-len(masked.lxc_mount_entries()) :] == masked.lxc_mount_entries()


def test_lxc_keys_privileged_and_unconfined() -> None:
    policy = SecurityPolicy(None, seccomp=None, apparmor="richc-container", mask_paths=False)
    assert policy.privileged
    assert lxc_keys(policy, None) == [
        ("lxc.seccomp.profile", ""),
        ("lxc.apparmor.profile", "richc-container"),
    ]
    with pytest.raises(ValueError):
        lxc_keys(default_policy(None), None)


def test_apply_oci_merges_without_duplicates() -> None:
    config = copy.deepcopy(BASE)
    policy = default_policy(IDMAP)
    apply_oci(config, policy, "x86_64")
    apply_oci(config, policy, "x86_64")  # idempotent
    linux = config["linux"]
    assert [ns["type"] for ns in linux["namespaces"]] == ["pid", "mount", "user"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 131072, "size": 65536}]
    assert linux["seccomp"] == seccomp.render_oci(seccomp.default_profile(), "x86_64")
    assert linux["readonlyPaths"].count("/proc/sys") == 1
    assert "/proc/irq" in linux["readonlyPaths"]
    assert linux["maskedPaths"] == masked.oci_paths()["maskedPaths"]
    assert "apparmorProfile" not in config["process"]


def test_apply_oci_privileged_unconfined_removes_what_was_there() -> None:
    config = copy.deepcopy(BASE)
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW"}
    config["process"]["apparmorProfile"] = "old"
    apply_oci(config, SecurityPolicy(None, mask_paths=False))
    assert "seccomp" not in config["linux"] and "uidMappings" not in config["linux"]
    assert [ns["type"] for ns in config["linux"]["namespaces"]] == ["pid", "mount"]
    assert "apparmorProfile" not in config["process"]
    assert config["linux"]["maskedPaths"] == []


def test_nesting_adds_an_unmasked_proc_and_sysfs_for_both_runtimes() -> None:
    policy = default_policy(IDMAP, nesting=True)
    keys = lxc_keys(policy, "/c/seccomp")
    assert keys[-2:] == [
        ("lxc.mount.entry", "proc dev/.lxc/proc proc nosuid,nodev,noexec,create=dir,optional 0 0"),
        ("lxc.mount.entry", "sysfs dev/.lxc/sys sysfs nosuid,nodev,noexec,create=dir,optional 0 0"),
    ]
    assert not any("dev/.lxc" in v for _, v in lxc_keys(default_policy(IDMAP), "/c/seccomp"))
    config = copy.deepcopy(BASE)
    apply_oci(config, policy)
    apply_oci(config, policy)  # merging twice adds nothing twice
    nested = [m for m in config["mounts"] if m["destination"].startswith("/dev/.lxc/")]
    assert nested == [
        {"destination": "/dev/.lxc/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "nodev", "noexec"]},
        {"destination": "/dev/.lxc/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "nodev", "noexec"]},
    ]  # fmt: skip
