"""richc's side of issue 17, without root: the security config, the state record, and what
both runtimes render for a spec with a security policy (and without one: unchanged)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from isolation.apparmor import NESTING_PROFILE_NAME, PROFILE_NAME
from isolation.idmap import IdMap
from isolation.policy import SecurityPolicy, default_policy
from richc import config as cfg
from richc.config.security import SecurityConfig, check_profile, parse_security
from richc.errors import ConfigError
from richc.hostres import ORDER
from richc.hostres.security import IDMAP, LEGACY, describe, policy
from richc.plan import _privileged_notes
from richc.runtime.lxc import config_text
from richc.runtime.oci_config import render_config
from richc.spec import ContainerSpec, HostFacts, Paths, build_spec
from richc.state import SecurityRecord, State

PATHS = Paths(rootfs=Path("/var/lib/richc/containers/c1/rootfs"), log_dir=Path("/var/log/c1"))
SECCOMP_FILE = Path("/var/lib/richc/containers/c1/seccomp.lxc")


def spec_for(security: SecurityPolicy | None, host: HostFacts | None = None) -> ContainerSpec:
    config = cfg.from_dict({"name": "c1"})
    spec = build_spec(config, cfg.Init.busybox, PATHS, host or HostFacts(), security=security)
    return replace(spec, seccomp_file=SECCOMP_FILE if security is not None else None)


def test_security_config_parses_flags_and_file_and_refuses_nonsense() -> None:
    assert parse_security(None) == SecurityConfig()
    assert parse_security({"privileged": True, "seccomp": "unconfined"}) == SecurityConfig(
        True, "unconfined"
    )
    assert parse_security({"seccomp": "./p.json"}).seccomp == str(Path("p.json").absolute())
    assert parse_security({"nesting": True}) == SecurityConfig(nesting=True)
    for bad in (
        {"privileged": "yes"},
        {"seccomp": "strict"},
        {"apparmor": "x"},
        {"nesting": "on"},
        {1: True},
        "on",
    ):
        with pytest.raises(ConfigError):
            parse_security(bad)
    # The default is left out of config.yaml; a choice is written.
    assert "security" not in cfg.from_dict({"name": "c1"}).to_dict()
    chosen = cfg.from_dict({"name": "c1", "security": {"privileged": True}})
    assert chosen.to_dict()["security"] == {"privileged": True, "seccomp": "default"}
    nested = cfg.from_dict({"name": "c1", "security": {"nesting": True}})
    assert nested.to_dict()["security"] == {
        "privileged": False,
        "seccomp": "default",
        "nesting": True,
    }
    assert cfg.from_dict(nested.to_dict()).security.nesting


def test_a_bad_custom_profile_is_refused_naming_the_line(tmp_path: Path) -> None:
    profile = tmp_path / "p.seccomp"
    profile.write_text("2\ndenylist\nkexec_load errno 1\nbpf frobnicate\n")
    with pytest.raises(ConfigError, match="line 4"):
        check_profile(SecurityConfig(seccomp=str(profile)))
    profile.write_text("2\ndenylist\nkexec_load errno 1\n")
    check_profile(SecurityConfig(seccomp=str(profile)))


def test_the_id_range_comes_before_every_other_resource() -> None:
    assert ORDER[0] == "security"


def test_old_state_has_no_record_and_is_privileged_as_made() -> None:
    state = State.from_dict({"name": "c1", "schema": 2, "status": "created"})
    assert state.security is None
    config = cfg.from_dict({"name": "c1"})
    assert policy(config, state) is None  # rendered as before: no userns, filter or masks
    assert describe(config, state) == {"privileged": True, "why": LEGACY}
    migrated = State.from_dict({"name": "c1", "schema": 1, "extra": {}})
    assert migrated.security is None


def test_record_round_trips_and_gives_the_policy() -> None:
    record = SecurityRecord(False, 131072, 65536, IDMAP, "ext4 supports idmapped mounts")
    state = State(name="c1", status="created", security=record)
    loaded = State.from_dict(state.to_dict())
    assert loaded.security == record
    found = policy(cfg.from_dict({"name": "c1"}), loaded)
    assert found is not None and found.idmap == IdMap.of(131072)
    assert found.runtime_idmaps_rootfs and found.seccomp is not None
    unconfined = cfg.from_dict({"name": "c1", "security": {"seccomp": "unconfined"}})
    found = policy(unconfined, replace(loaded, security=SecurityRecord(True)))
    assert found is not None and found.privileged and found.seccomp is None


def test_lxc_config_without_a_policy_is_unchanged() -> None:
    text = config_text(spec_for(None))
    assert "lxc.idmap" not in text and "lxc.seccomp" not in text
    assert "lxc.apparmor" not in text and "/proc/kcore" not in text


def test_lxc_config_renders_the_idmap_seccomp_and_masks() -> None:
    idmapped = default_policy(IdMap.of(131072), runtime_idmaps_rootfs=True)
    text = config_text(spec_for(idmapped))
    lines = text.splitlines()
    assert "lxc.idmap = u 0 131072 65536" in lines and "lxc.idmap = g 0 131072 65536" in lines
    assert "lxc.rootfs.options = idmap=container" in lines
    assert f"lxc.seccomp.profile = {SECCOMP_FILE}" in lines
    assert "lxc.apparmor.profile = unconfined" in lines  # no AppArmor on the host
    assert "lxc.mount.entry = /dev/null proc/kcore none bind,ro,optional 0 0" in lines
    assert "lxc.cap.drop = mac_admin mac_override sys_module sys_rawio sys_time" in lines
    overlay = default_policy(IdMap.of(131072))  # a shared image: no idmap= for the runtime
    assert "idmap=container" not in config_text(spec_for(overlay))
    privileged = default_policy(None, seccomp=None)
    text = config_text(spec_for(privileged))
    assert "lxc.idmap" not in text and "lxc.seccomp.profile = \n" in text


def test_oci_config_renders_the_user_namespace_and_the_idmapped_root() -> None:
    spec = spec_for(default_policy(IdMap.of(196608), runtime_idmaps_rootfs=True))
    config = render_config(spec, cgroups_path="/richc.payload.c1")
    linux = config["linux"]
    assert {"type": "user"} in linux["namespaces"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 196608, "size": 65536}]
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    assert config["root"]["path"].endswith("/c1/rootfs.idmapped")
    assert "apparmorProfile" not in config["process"]
    legacy = render_config(spec_for(None), cgroups_path="/x")
    assert "seccomp" not in legacy["linux"] and legacy["root"]["path"].endswith("/c1/rootfs")


def test_apparmor_profile_is_rendered_where_the_host_has_apparmor() -> None:
    facts = HostFacts(apparmor=True, apparmor_confines=True)
    spec = spec_for(default_policy(IdMap.of(131072)), facts)
    assert f"lxc.apparmor.profile = {PROFILE_NAME}" in config_text(spec).splitlines()
    config = render_config(spec, cgroups_path="/x")
    assert config["process"]["apparmorProfile"] == PROFILE_NAME
    nested = spec_for(default_policy(IdMap.of(131072), nesting=True), facts)
    lines = config_text(nested).splitlines()
    assert f"lxc.apparmor.profile = {NESTING_PROFILE_NAME}" in lines
    assert (
        "lxc.mount.entry = proc dev/.lxc/proc proc nosuid,nodev,noexec,create=dir,optional 0 0"
        in lines
    )
    config = render_config(nested, cgroups_path="/x")
    assert config["process"]["apparmorProfile"] == NESTING_PROFILE_NAME


def test_apparmor_without_its_tools_runs_unconfined() -> None:
    # AppArmor in the kernel but no apparmor_parser (a Debian kernel booted bare, as the
    # VM tests do): richc's profile cannot be loaded, so the container is unconfined.
    spec = spec_for(default_policy(IdMap.of(131072)), HostFacts(apparmor=True))
    assert "lxc.apparmor.profile = unconfined" in config_text(spec).splitlines()
    assert "apparmorProfile" not in render_config(spec, cgroups_path="/x")["process"]


def test_plan_says_when_a_vm_tree_may_need_privileged(tmp_path: Path) -> None:
    import os
    import stat

    tree = tmp_path / "vm"
    (tree / "dev").mkdir(parents=True)
    os.mknod(tree / "dev/sda", stat.S_IFBLK | 0o660, os.makedev(8, 0))
    config = cfg.from_dict({"name": "c1", "from": f"dir:{tree}"})
    notes = _privileged_notes(config)
    assert len(notes) == 1 and "--privileged" in notes[0] and "dev/sda" in notes[0]
