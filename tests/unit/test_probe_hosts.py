"""The probe on recorded /proc and /sys trees of four kernel generations and this host.

Each test states what a kernel of that age has, and what richc must choose there: no
cgroup namespace before 4.6, lxc.cgroup.* on v1 and hybrid hosts, lxc.cgroup2.* on pure
v2, no open_tree before 5.2, the quota backend the store path allows.
"""

from __future__ import annotations

from richc.probe import CgroupLayout, HostReport, features
from richc.probe.decide import QuotaBackend, QuotaSelection
from tests.fixtures.hosts.support import probe_fixture


def checks(name: str, **tools: bool) -> dict[str, tuple[str, str, str]]:
    report = HostReport.of(probe_fixture(name, **tools))
    return {d.check: (d.value, d.use, d.why) for d in report.decisions}


class TestLinux2632:
    """Debian 6: one v1 hierarchy at /cgroup, no /proc/self/ns, memory cgroup off by default."""

    name = "linux-2.6.32-squeeze"

    def test_facts(self) -> None:
        probe = probe_fixture(self.name)
        assert probe.kernel.release == "2.6.32-5-amd64"
        assert str(probe.kernel.version) == "2.6.32"
        assert probe.kernel.config_source == "/boot/config-2.6.32-5-amd64"
        # No /proc/self/ns before 3.0: namespaces follow from the version, user ns not among them.
        assert not probe.namespaces.listed
        assert probe.namespaces.available == ("ipc", "mnt", "net", "pid", "uts")
        assert not probe.user_namespaces.present
        assert probe.cgroups.layout is CgroupLayout.v1
        assert probe.cgroups.hierarchies[0].mountpoint == "/cgroup"
        assert "memory" in probe.cgroups.disabled_controllers
        assert "memory" not in probe.cgroups.v1_controllers
        assert not probe.filesystems.overlay
        assert probe.filesystems.fuse
        assert not probe.seccomp.status_field and not probe.seccomp.filter
        assert probe.systemd.pid1_comm is None and not probe.systemd.pid1
        assert probe.cpu_count == 4

    def test_features(self) -> None:
        feats = features(probe_fixture(self.name))
        assert feats.cgroup_version == 1
        assert feats.cgroup_key_prefix() == "lxc.cgroup"
        assert not feats.use_cgroup_ns
        assert "cgroup" not in feats.namespaces
        assert feats.namespaces == ("mount", "pid", "uts", "ipc", "network")
        assert feats.cgroup_controllers == ("cpu", "cpuset")  # no memory, no pids (4.3)
        assert not feats.has_overlay and not feats.has_user_ns
        assert not feats.has_open_tree and not feats.has_pidfd
        assert feats.quota_backend == "loop"

    def test_decisions(self) -> None:
        found = checks(self.name)
        assert "memory disabled at boot" in found["cgroups"][2]
        assert "pids not in this kernel" in found["cgroups"][2]
        # cgroup:mixed still works without a cgroup namespace, but shows host paths; say so.
        assert found["cgroup_mount"][1] == "lxc.mount.auto cgroup:mixed"
        assert "no cgroup namespace" in found["cgroup_mount"][2]
        assert found["lxcfs_remount"][1] == "restart the container"
        assert found["quota"][1] == "loop"
        assert "ext3 has no project quota" in found["quota"][2]

    def test_runc_is_refused_on_this_kernel(self) -> None:
        found = checks(self.name, lxc=False)
        assert found["runtime"][1] == "auto -> none"
        assert "older than 3.10" in found["runtime"][2]
        assert features(probe_fixture(self.name, lxc=False)).runtime is None

    def test_lxc_serves_it(self) -> None:
        assert features(probe_fixture(self.name)).runtime == "lxc"


class TestLinux310:
    """RHEL 7-like: v1 with co-mounted controllers, user ns compiled in but disabled."""

    name = "linux-3.10-rhel7"

    def test_facts(self) -> None:
        probe = probe_fixture(self.name)
        assert probe.namespaces.listed
        assert probe.namespaces.available == ("ipc", "mnt", "net", "pid", "user", "uts")
        assert probe.user_namespaces.present
        assert probe.user_namespaces.max_namespaces == 0
        assert not probe.user_namespaces.usable
        assert probe.cgroups.layout is CgroupLayout.v1
        cpu = next(h for h in probe.cgroups.hierarchies if "cpu" in h.controllers)
        # "seclabel" and "release_agent=..." are options, not controllers.
        assert cpu.controllers == ("cpuacct", "cpu")
        named = next(h for h in probe.cgroups.hierarchies if h.mountpoint.endswith("systemd"))
        assert named.controllers == ("name=systemd",)
        assert not probe.filesystems.overlay
        assert probe.seccomp.filter and probe.seccomp.mode == 0
        assert probe.systemd.pid1
        assert probe.quota.fstype == "xfs" and probe.quota.project_option is None

    def test_features_and_decisions(self) -> None:
        feats = features(probe_fixture(self.name))
        assert feats.cgroup_version == 1 and not feats.use_cgroup_ns
        assert feats.cgroup_controllers == ("memory", "cpu", "cpuset")
        assert not feats.has_user_ns and not feats.has_overlay
        found = checks(self.name)
        assert found["user_namespaces"][0] == "present, disabled (user.max_user_namespaces = 0)"
        assert found["user_namespaces"][1] == "unusable"
        assert "xfs mounted without pquota" in found["quota"][2]
        assert found["systemd"][1] == "systemctl"

    def test_runc_serves_it_without_lxc(self) -> None:
        feats = features(probe_fixture(self.name, lxc=False))
        assert (feats.runtime, feats.runtime_binary) == ("runc", "/usr/sbin/runc")


class TestLinux419:
    """Debian 10: systemd's hybrid layout, store on btrfs, lxcfs running, AppArmor on."""

    name = "linux-4.19-buster"

    def test_facts(self) -> None:
        probe = probe_fixture(self.name)
        assert probe.cgroups.layout is CgroupLayout.hybrid
        assert probe.cgroups.v2_mountpoint == "/sys/fs/cgroup/unified"
        assert probe.cgroups.v2_controllers == ()
        assert "cgroup" in probe.namespaces.available
        assert "time" not in probe.namespaces.available
        assert probe.filesystems.overlay_loaded
        assert probe.lxcfs.mountpoints == ("/var/lib/lxcfs",)
        assert probe.apparmor.enabled
        assert probe.user_namespaces.unprivileged_clone == 0
        assert probe.quota.mountpoint == "/var/lib/richc" and probe.quota.fstype == "btrfs"

    def test_features(self) -> None:
        feats = features(probe_fixture(self.name))
        assert feats.cgroup_layout is CgroupLayout.hybrid
        assert feats.cgroup_version == 1  # memory is on v1; the cgroup2 mount is empty
        assert feats.cgroup_controllers == ("memory", "cpu", "cpuset", "pids")
        assert feats.use_cgroup_ns
        assert feats.namespaces[-1] == "cgroup"
        assert feats.has_overlay and feats.has_fuse
        assert not feats.has_open_tree and not feats.has_pidfd
        assert feats.lxcfs_mountpoint == "/var/lib/lxcfs"
        assert feats.quota_backend == "btrfs"
        assert feats.apparmor

    def test_crun_is_refused_on_hybrid(self) -> None:
        feats = features(probe_fixture(self.name, lxc=False, runc=False))
        assert feats.runtime is None
        found = checks(self.name, lxc=False, runc=False)
        assert "crun refuses hybrid cgroups" in found["runtime"][2]

    def test_decisions(self) -> None:
        found = checks(self.name)
        assert found["apparmor"][1] == "lxc.apparmor.profile = unconfined"
        assert found["lxcfs"][1] == "views"
        assert found["lxcfs_remount"][1] == "restart the container"
        assert found["quota"][1] == "btrfs"


class TestLinux510:
    """Debian 11: pure cgroup2, store on ext4 mounted with prjquota, overlay as a module."""

    name = "linux-5.10-bullseye"

    def test_facts(self) -> None:
        probe = probe_fixture(self.name)
        assert probe.cgroups.layout is CgroupLayout.v2
        assert probe.cgroups.v1_controllers == ()
        assert probe.cgroups.v2_controllers == (
            "cpu", "cpuset", "hugetlb", "io", "memory", "pids", "rdma",
        )  # fmt: skip
        assert "time" in probe.namespaces.available
        assert "time_for_children" not in probe.namespaces.available
        assert probe.filesystems.overlay and not probe.filesystems.overlay_loaded
        assert probe.quota.project_option == "prjquota"

    def test_features(self) -> None:
        feats = features(probe_fixture(self.name))
        assert feats.cgroup_version == 2
        assert feats.cgroup_key_prefix() == "lxc.cgroup2"
        assert feats.cgroup_controllers == ("memory", "cpu", "cpuset", "pids")
        assert feats.use_cgroup_ns and feats.has_open_tree and feats.has_pidfd
        assert feats.quota_backend == "project"
        assert feats.cpu_count == 8

    def test_crun_serves_pure_v2_without_lxc_and_runc(self) -> None:
        feats = features(probe_fixture(self.name, lxc=False, runc=False))
        assert (feats.runtime, feats.runtime_binary) == ("runc", "/usr/bin/crun")

    def test_decisions(self) -> None:
        found = checks(self.name)
        assert found["cgroups"][1] == "lxc.cgroup2.* keys, OCI unified resources"
        assert found["overlayfs"][0] == "module"
        assert found["quota"][1] == "project"
        assert found["kernel"][1] == "every feature"


class TestRecordedHost:
    """This machine, recorded by record.py: kernel 6.18, hybrid cgroups, ext4 store."""

    name = "linux-6.18-host"

    def test_facts_match_testing_md(self) -> None:
        probe = probe_fixture(self.name)
        assert probe.kernel.version is not None and probe.kernel.version.major == 6
        assert probe.kernel.config_source == "/proc/config.gz"
        assert probe.cgroups.layout is CgroupLayout.hybrid
        assert "memory" in probe.cgroups.v1_controllers
        assert probe.quota.qfmt_v2 is False  # no ext4 quota format on this kernel
        assert not probe.systemd.pid1

    def test_choices(self) -> None:
        feats = features(probe_fixture(self.name))
        assert feats.cgroup_version == 1 and feats.use_cgroup_ns
        assert feats.quota_backend == "loop"
        found = checks(self.name)
        assert "CONFIG_QFMT_V2" in found["quota"][2]
        assert found["systemd"][1] == "unit files only"


class TestRecordedVM:
    """Debian 12's 6.1 kernel under virtme-ng, recorded in the VM: pure cgroup v2."""

    name = "linux-6.1-debian-vm"

    def test_facts(self) -> None:
        probe = probe_fixture(self.name)
        assert probe.kernel.release == "6.1.0-56-amd64"
        assert probe.cgroups.layout is CgroupLayout.v2
        assert probe.cgroups.v2_mountpoint == "/sys/fs/cgroup"
        assert "misc" in probe.cgroups.v2_controllers
        assert probe.apparmor.enabled
        assert probe.quota.fstype == "overlay"
        assert probe.quota.loop_module is True and not probe.quota.loop_devices

    def test_choices(self) -> None:
        feats = features(probe_fixture(self.name))
        assert feats.cgroup_version == 2 and feats.use_cgroup_ns
        assert feats.quota_backend is None
        found = checks(self.name)
        assert found["quota"][1] == "none: --disk is refused"
        assert "modprobe loop" in found["quota"][2]
        # Pure v2: crun is acceptable here, unlike on the hybrid CI host.
        feats = features(probe_fixture(self.name, lxc=False, runc=False))
        assert feats.runtime_binary == "/usr/bin/crun"


def test_a_live_quota_choice_overrides_the_recorded_facts() -> None:
    """On a live host doctor passes create's own choice for the containers directory; it
    wins over what the store's mount suggests (buster's store is btrfs)."""
    live = QuotaSelection(
        "/var/lib/richc/containers",
        "loop",
        (
            QuotaBackend("btrfs", False, "btrfs quota (qgroups) is not enabled"),
            QuotaBackend("loop", True, "create's check passes"),
        ),
    )
    probe = probe_fixture("linux-4.19-buster")
    assert features(probe).quota_backend == "btrfs"
    report = HostReport.of(probe, live)
    assert report.features.quota_backend == "loop"
    row = next(d for d in report.decisions if d.check == "quota")
    assert row.use == "loop" and row.why.startswith("btrfs: btrfs quota (qgroups) is not")
    data = report.to_json()
    assert data["quota"]["selected"]["backend"] == data["features"]["quota_backend"] == "loop"
    assert HostReport.of(probe).to_json()["quota"]["selected"] is None
