"""Kernel versions and the oldest kernel each feature richc may use needs.

The table :data:`REQUIREMENTS` is the one source for these numbers: the probe's decisions
read it, and ``docs/kernel-compat.md`` documents it (a unit test keeps the two in step).
Versions are upstream (kernel.org) releases. Distribution kernels backport features, so
where the running kernel exposes a feature directly (``/proc/self/ns``, ``/proc/filesystems``,
a mount option) the probe believes that over the version number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "2.6.32-5-amd64", "3.10.0-1160.el7.x86_64", "6.18.44-fc-v657", "5.4" (no patch level).
_RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
# /proc/version: "Linux version 6.1.0-56-amd64 (debian-kernel@...) ..."
_PROC_VERSION = re.compile(r"^Linux version (\S+)")


@dataclass(frozen=True, order=True)
class KernelVersion:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, release: str) -> KernelVersion | None:
        """The numeric version at the start of a release string, or None if there is none."""
        match = _RELEASE.match(release.strip())
        if match is None:
            return None
        return cls(int(match[1]), int(match[2]), int(match[3] or 0))

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}"
        return f"{base}.{self.patch}" if self.patch else base


def release_from_proc_version(text: str) -> str | None:
    """The release field of ``/proc/version`` (used when ``osrelease`` is missing)."""
    match = _PROC_VERSION.match(text.strip())
    return match[1] if match else None


@dataclass(frozen=True)
class Requirement:
    """A feature richc may use and the oldest upstream kernel that has it."""

    feature: str  # stable snake_case key, also used in doctor's JSON
    since: KernelVersion
    what: str  # the kernel interface
    used_for: str  # what richc does with it


def _v(text: str) -> KernelVersion:
    version = KernelVersion.parse(text)
    assert version is not None
    return version


# Ordered by version, as docs/kernel-compat.md shows them.
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("mount_namespace", _v("2.4.19"), "CLONE_NEWNS", "every container"),
    Requirement("uts_ipc_namespaces", _v("2.6.19"), "CLONE_NEWUTS, CLONE_NEWIPC", "hostname"),
    Requirement("pid_namespace", _v("2.6.24"), "CLONE_NEWPID", "init as PID 1"),
    Requirement("cgroup_v1", _v("2.6.24"), "cgroup filesystem", "limits: lxc.cgroup.*"),
    Requirement("net_namespace", _v("2.6.29"), "CLONE_NEWNET", "lxc.net.0.type = empty / veth"),
    Requirement("proc_ns_dir", _v("3.0"), "/proc/PID/ns (ipc net uts; all in 3.8)", "probe"),
    Requirement("loop_control", _v("3.1"), "/dev/loop-control", "loop-image quota backend"),
    Requirement("seccomp_filter", _v("3.5"), "SECCOMP_MODE_FILTER", "runtime seccomp profile"),
    Requirement("btrfs_qgroups", _v("3.6"), "btrfs quota groups", "btrfs quota backend"),
    Requirement("user_namespace", _v("3.8"), "CLONE_NEWUSER (complete)", "not used yet"),
    Requirement("runc", _v("3.10"), "setns on all namespaces", "runc/crun runtime"),
    Requirement("overlayfs", _v("3.18"), "overlay filesystem", "reported; image layers"),
    Requirement("pids_controller", _v("4.3"), "pids cgroup controller", "--pids limit"),
    Requirement("cgroup_v2", _v("4.5"), "cgroup2 filesystem", "limits: lxc.cgroup2.*"),
    Requirement(
        "ext4_project_quota", _v("4.5"), "ext4 prjquota, FS_IOC_FSSETXATTR", "project quota"
    ),
    Requirement("cgroup_namespace", _v("4.6"), "CLONE_NEWCGROUP", "container sees its cgroup as /"),
    Requirement("cgroup_v2_cpu", _v("4.15"), "cpu controller on cgroup2", "--cpus on cgroup v2"),
    Requirement("cgroup_v2_cpuset", _v("5.0"), "cpuset controller on cgroup2", "--cpuset on v2"),
    Requirement("open_tree", _v("5.2"), "open_tree(2), move_mount(2)", "lxcfs remount in place"),
    Requirement("pidfd", _v("5.3"), "pidfd_open(2)", "race-free waits and signals"),
    Requirement("time_namespace", _v("5.6"), "CLONE_NEWTIME", "reported, not used"),
)

_BY_FEATURE = {req.feature: req for req in REQUIREMENTS}


def requirement(feature: str) -> Requirement:
    return _BY_FEATURE[feature]


def has(version: KernelVersion | None, feature: str) -> bool:
    """Whether *version* is at least the kernel that introduced *feature*.

    An unknown version counts as old: nothing newer is used unless the kernel is known to
    have it.
    """
    if version is None:
        return False
    return version >= _BY_FEATURE[feature].since
