"""The probe's readers: kernel releases, mountinfo, kernel configs, odd or missing files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from richc.mountinfo import mount_of
from richc.mountinfo import parse as parse_mountinfo
from richc.probe import probe_host
from richc.probe.kernel import REQUIREMENTS, KernelVersion, has, release_from_proc_version
from richc.probe.tree import HostTree, kconfig_flag, parse_kconfig
from tests.fixtures.hosts.support import fake_tools


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("2.6.32-5-amd64", (2, 6, 32)),
        ("3.10.0-1160.el7.x86_64", (3, 10, 0)),
        ("6.18.44-fc-v657", (6, 18, 44)),
        ("5.4", (5, 4, 0)),
        ("4.19.0-27-amd64\n", (4, 19, 0)),
    ],
)
def test_kernel_version_parse(release: str, expected: tuple[int, int, int]) -> None:
    assert KernelVersion.parse(release) == KernelVersion(*expected)


def test_kernel_version_rejects_garbage() -> None:
    assert KernelVersion.parse("linux") is None


def test_release_from_proc_version() -> None:
    text = "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP"
    assert release_from_proc_version(text) == "6.1.0-56-amd64"


def test_version_gates() -> None:
    assert has(KernelVersion(5, 2), "open_tree")
    assert not has(KernelVersion(5, 1, 21), "open_tree")
    assert not has(KernelVersion(4, 5), "cgroup_namespace")
    assert not has(None, "pidfd")  # unknown counts as old


def test_requirements_are_in_version_order() -> None:
    versions = [r.since for r in REQUIREMENTS]
    assert versions == sorted(versions)


def test_mountinfo_fields_and_escapes() -> None:
    text = (
        "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root "
        "rw,errors=continue\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
        "garbage line\n"
    )
    first, second = parse_mountinfo(text)
    assert first.mountpoint == "/mnt/with space"
    assert first.root == "/mnt1"
    assert first.fstype == "ext3" and first.source == "/dev/root"
    assert first.super_options == ("rw", "errors=continue")
    assert second.fstype == "cgroup2"


def test_mount_of_takes_the_longest_prefix() -> None:
    mounts = parse_mountinfo(
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "2 1 8:2 / /var rw - xfs /dev/sda2 rw\n"
        "3 2 8:3 / /var/lib/richc rw - btrfs /dev/sda3 rw\n"
        "4 1 8:4 / /variant rw - ext4 /dev/sda4 rw\n"
    )
    assert (m := mount_of(mounts, "/var/lib/richc/containers")) and m.fstype == "btrfs"
    assert (m := mount_of(mounts, "/var/log")) and m.fstype == "xfs"
    assert (m := mount_of(mounts, "/variant/x")) and m.mountpoint == "/variant"
    assert (m := mount_of(mounts, "/srv")) and m.mountpoint == "/"


def test_kconfig() -> None:
    config = parse_kconfig('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="x"\n')
    assert config == {"A": "y", "B": "m", "C": "n", "D": "x"}
    assert kconfig_flag(config, "A") and kconfig_flag(config, "B")
    assert kconfig_flag(config, "C") is False and kconfig_flag(config, "MISSING") is False
    assert kconfig_flag(None, "A") is None


def test_config_gz_is_read(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/config.gz").write_bytes(gzip.compress(b"CONFIG_QFMT_V2=m\n"))
    assert HostTree(tmp_path).read_gzip("proc/config.gz") == "CONFIG_QFMT_V2=m\n"
    (tmp_path / "proc/config.gz").write_bytes(b"not gzip")
    assert HostTree(tmp_path).read_gzip("proc/config.gz") is None


def test_empty_root_gives_unknowns_not_errors(tmp_path: Path) -> None:
    probe = probe_host(tmp_path, tools=fake_tools())
    assert probe.kernel.release is None and probe.kernel.version is None
    assert probe.namespaces.available == ()
    assert str(probe.cgroups.layout) == "none"
    assert probe.cpu_count is None
    assert probe.quota.fstype is None


def test_release_falls_back_to_proc_version(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/version").write_text("Linux version 4.9.0-19-amd64 (gcc 6.3.0) #1 SMP\n")
    probe = probe_host(tmp_path, tools=fake_tools())
    assert probe.kernel.release == "4.9.0-19-amd64"
    assert probe.kernel.version == KernelVersion(4, 9, 0)


def test_proc_ns_before_3_8_lists_only_some(tmp_path: Path) -> None:
    """3.0-3.7 list ipc, net and uts only; mnt and pid come from the version."""
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text("3.2.0-4-amd64\n")
    (tmp_path / "proc/self/ns").mkdir(parents=True)
    for name in ("ipc", "net", "uts"):
        (tmp_path / "proc/self/ns" / name).touch()
    probe = probe_host(tmp_path, tools=fake_tools())
    assert probe.namespaces.available == ("ipc", "mnt", "net", "pid", "uts")


def test_cpu_online_ranges(tmp_path: Path) -> None:
    (tmp_path / "sys/devices/system/cpu").mkdir(parents=True)
    (tmp_path / "sys/devices/system/cpu/online").write_text("0-3,6,8-9\n")
    assert probe_host(tmp_path, tools=fake_tools()).cpu_count == 7
