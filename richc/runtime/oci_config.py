"""Render a ContainerSpec as an OCI runtime-spec ``config.json`` (a pure function).

The rendering follows what the LXC runtime makes of the same spec, so a container looks
the same on both (tests/integration/test_parity.py checks it):

- proc with ``/proc/sys`` and ``/proc/sysrq-trigger`` read-only (LXC's ``proc:mixed``),
  sysfs read-only (``sys:ro``), a tmpfs ``/dev`` with the standard nodes (``autodev``);
- the cgroup filesystem only where LXC mounts one: on cgroup v1 inside a cgroup
  namespace LXC 5 leaves ``/sys/fs/cgroup`` to the init unless the spec says
  ``cgroup:mixed:force``, and runc follows; writable inside a cgroup namespace (the
  container's own subtree), read-only without one;
- every capability except the spec's ``cap_drop``, and the spec's device allow-list;
- a ``/dev/console`` when the runtime has one to give (a pty that richc's console keeper
  holds, as LXC's monitor holds its console pty);
- the spec's security policy (user namespace, seccomp, masked paths, AppArmor) merged by
  isolation.policy; a rootfs that needs an idmapped mount is read from
  ``spec.idmapped_rootfs``, where the runtime binds it at start.

Nothing here reads the host: golden-file tests in tests/unit/golden/oci/ pin the output.
"""

from __future__ import annotations

import signal
from typing import Any

from richc.config.limits import CPU_PERIOD_US, Limits
from richc.errors import HostUnsupported
from richc.sizes import format_cpuset
from richc.spec import ContainerSpec
from richc.spec.cgroupfiles import cgroup_files, cpu_quota_us, device_number, weight_to_shares

OCI_VERSION = "1.0.2"

# Every capability of Linux 5.9+ (<linux/capability.h>, up to CAP_CHECKPOINT_RESTORE = 40).
# runc leaves out the ones the running kernel does not know.
ALL_CAPS = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
    "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
    "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
    "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
    "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
    "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
    "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)  # fmt: skip

# runc refuses any mount below /proc except these files, which lxcfs emulates
# (libcontainer's checkProcMount); other /proc views (e.g. /proc/pressure/*) are left out.
RUNC_PROC_MOUNTS = frozenset(
    {
        "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
        "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
        "/proc/sys/kernel/ns_last_pid",
    }
)  # fmt: skip

# The spec's namespace names are the runtime-spec's own; "mount" is the only one LXC calls
# differently, so the mapping is the identity apart from being an allow-list.
NAMESPACES = ("mount", "pid", "uts", "ipc", "network", "cgroup", "user")

_NOSUID_NOEXEC_NODEV = ["nosuid", "noexec", "nodev"]


def bounding_set(status_text: str) -> frozenset[str]:
    """The capability names in the ``CapBnd`` line of a /proc/PID/status text."""
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return frozenset(c for bit, c in enumerate(ALL_CAPS) if mask >> bit & 1)
    return frozenset(ALL_CAPS)


def oci_signal(name: str) -> int:
    """A signal name as richc's configs spell it (``SIGUSR2``, ``SIGRTMIN+3``) -> its number."""
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    for base, number in (("SIGRTMIN", signal.SIGRTMIN), ("SIGRTMAX", signal.SIGRTMAX)):
        if text.startswith(base):
            offset = text[len(base) :] or "+0"
            if offset[0] in "+-" and offset[1:].isdigit():
                return int(number) + int(offset)
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise ValueError(f"unknown signal {name!r}") from None


def _base_mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": []},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": [*_NOSUID_NOEXEC_NODEV, "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": list(_NOSUID_NOEXEC_NODEV),
        },
        _sys_mount(spec),
    ]
    if _mount_cgroup(spec):
        # In a cgroup namespace the container sees only its own subtree, which it may
        # manage (LXC's "mixed" on v2); without one it must not write its parents' files.
        writable = "cgroup" in spec.namespaces
        mounts.append(
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": [*_NOSUID_NOEXEC_NODEV, "relatime", "rw" if writable else "ro"],
            }
        )
    return mounts


def _sys_mount(spec: ContainerSpec) -> dict[str, Any]:
    """/sys, read-only. A user namespace may mount sysfs only over a network namespace of
    its own; sharing the host's (``--net host``), the host's /sys is bound instead, as
    rootless runc and Podman do (still read-only, and masked like the rest)."""
    if spec.network == "host" and spec.security is not None and spec.security.idmap is not None:
        return {
            "destination": "/sys",
            "type": "bind",
            "source": "/sys",
            "options": ["rbind", "rprivate", *_NOSUID_NOEXEC_NODEV, "ro"],
        }
    return {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": [*_NOSUID_NOEXEC_NODEV, "ro"],
    }


def _mount_cgroup(spec: ContainerSpec) -> bool:
    """Whether LXC would mount a cgroup filesystem for this spec (see the module doc)."""
    if spec.cgroup_mount is None:
        return False
    # Plain "mixed" on v1 in a cgroup namespace: LXC leaves the mounts to the init;
    # ":force" makes it mount every hierarchy all the same.
    in_cgroupns_v1 = spec.cgroup_version == 1 and "cgroup" in spec.namespaces
    return not in_cgroupns_v1 or spec.cgroup_mount.endswith(":force")


def _spec_mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    out = []
    for mount in spec.mounts:
        target = mount.target
        if target.startswith("/proc/") and target not in RUNC_PROC_MOUNTS:
            continue  # runc would refuse the whole container for it
        options = list(mount.options)
        if "bind" in options and "rbind" not in options:
            options.append("rprivate")
        out.append(
            {
                "destination": target,
                "type": "bind" if "bind" in options else mount.fstype,
                "source": mount.source,
                "options": options,
            }
        )
    return out


# The limits' device throttles -> their lists under the runtime-spec's blockIO.
_THROTTLES = {
    "device_read_bps": "throttleReadBpsDevice",
    "device_write_bps": "throttleWriteBpsDevice",
    "device_read_iops": "throttleReadIOPSDevice",
    "device_write_iops": "throttleWriteIOPSDevice",
}


def _devices(spec: ContainerSpec) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    for kind, major, minor, access in spec.devices:
        rule: dict[str, Any] = {"allow": True, "type": kind, "major": major}
        if minor != "*":
            rule["minor"] = minor
        rule["access"] = access
        devices.append(rule)
    return devices


def _v1_resources(limits: Limits, io_weight_file: str | None) -> dict[str, Any]:
    """The typed limits as the runtime-spec's v1 sections, field by field."""
    memory: dict[str, int] = {}
    if limits.memory is not None:
        memory["limit"] = limits.memory
    if limits.memory_swap is not None:
        memory["swap"] = limits.memory_swap  # memory plus swap, as memsw and Docker
    if limits.memory_reservation is not None:
        memory["reservation"] = limits.memory_reservation
    cpu: dict[str, Any] = {}
    if limits.cpus is not None:
        cpu["quota"] = cpu_quota_us(limits.cpus)
        cpu["period"] = CPU_PERIOD_US
    shares = limits.cpu_shares
    if shares is None and limits.cpu_weight is not None:
        shares = weight_to_shares(limits.cpu_weight)
    if shares is not None:
        cpu["shares"] = shares
    if limits.cpuset is not None:
        cpu["cpus"] = format_cpuset(limits.cpuset)
    out: dict[str, Any] = {}
    if memory:
        out["memory"] = memory
    if cpu:
        out["cpu"] = cpu
    if limits.pids is not None:
        out["pids"] = {"limit": limits.pids}
    if limits.io_weight is not None:
        if io_weight_file not in (None, "blkio.weight", "blkio.bfq.weight"):
            raise HostUnsupported(
                f"the runc runtime cannot set the cgroup v1 file {io_weight_file}",
                hint="use the lxc runtime for this limit, or a cgroup v2 host",
            )
        out["blockIO"] = {"weight": limits.io_weight}  # runc writes whichever file exists
    return out


def _resources(spec: ContainerSpec) -> dict[str, Any]:
    resources: dict[str, Any] = {"devices": _devices(spec)}
    limits = spec.limits
    if spec.cgroup_version == 2:
        # runc writes "unified" entries to the files of the same name, exactly as LXC's
        # lxc.cgroup2.* keys do; no translation can lose a value. io.max holds one line
        # per device, unified one value per file: the throttles go as blockIO lists.
        files = cgroup_files(limits, 2, io_weight_file=spec.io_weight_file)
        unified = {key: value for key, value in files if key != "io.max"}
        if unified:
            resources["unified"] = unified
    else:
        resources.update(_v1_resources(limits, spec.io_weight_file))
    for key, oci_key in _THROTTLES.items():
        for device, rate in getattr(limits, key):
            major, _, minor = device_number(device).partition(":")
            entry = {"major": int(major), "minor": int(minor), "rate": rate}
            resources.setdefault("blockIO", {}).setdefault(oci_key, []).append(entry)
    return resources


def render_config(
    spec: ContainerSpec,
    *,
    cgroups_path: str,
    console: str | None = None,
    bounding: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The ``config.json`` for *spec*: a bundle whose rootfs is ``spec.rootfs``.

    *cgroups_path* names the container's cgroup; *console* is a host pty to bind as the
    container's ``/dev/console`` (None: the container has no console). *bounding* is the
    capabilities richc itself holds: runc fails to start a container asked for more (LXC
    silently keeps what there is), so the others are left out.
    """
    # NICs (spec.nics) are not in config.json: runc has no veth support, so richc makes
    # them in the container's network namespace between `runc create` and `runc start`.
    unknown = [ns for ns in spec.namespaces if ns not in NAMESPACES]
    if unknown:
        raise ValueError(f"namespaces the runtime-spec does not know: {unknown}")
    namespaces = [
        ns
        for ns in spec.namespaces
        # "host" networking shares the host's network namespace, as lxc.net.0.type = none.
        if not (ns == "network" and spec.network == "host")
    ]
    if spec.security is not None and spec.security.idmap is not None:
        # A new user namespace starts with a full bounding set (the kernel resets it), as
        # LXC's unprivileged containers show: only the spec's drops apply.
        bounding = None
    caps = [
        f"CAP_{c.upper()}"
        for c in ALL_CAPS
        if c not in set(spec.cap_drop) and (bounding is None or c in bounding)
    ]
    process: dict[str, Any] = {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": list(spec.argv),
        "env": [f"{key}={value}" for key, value in spec.env],
        "cwd": "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": False,
    }
    if spec.rlimits:
        process["rlimits"] = [
            {"type": f"RLIMIT_{name.upper()}", "soft": soft, "hard": hard}
            for name, soft, hard in spec.rlimits
        ]
    if spec.apparmor_profile:
        process["apparmorProfile"] = spec.apparmor_profile
    mounts = _base_mounts(spec)
    if console is not None:
        mounts.append(
            {
                "destination": "/dev/console",
                "type": "bind",
                "source": console,
                "options": ["bind", "rprivate"],
            }
        )
    mounts += _spec_mounts(spec)
    root = spec.rootfs
    if spec.security is not None and spec.security.runtime_idmaps_rootfs:
        root = spec.idmapped_rootfs  # runc 1.1 cannot idmap it: the runtime binds it there
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(root), "readonly": False},
        "hostname": spec.hostname,
        "mounts": mounts,
        "annotations": {
            "org.richc.name": spec.name,
            "org.richc.init": spec.init.value,
            "org.richc.halt-signal": spec.halt_signal,
            "org.richc.reboot-signal": spec.reboot_signal,
            **dict(spec.annotations),
        },
        "linux": {
            "namespaces": [{"type": ns} for ns in namespaces],
            "cgroupsPath": cgroups_path,
            "resources": _resources(spec),
            # proc:mixed in LXC: the kernel's knobs are read-only, the rest of /proc is not.
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
            "maskedPaths": [],
        },
    }
    if spec.security is not None:
        from isolation.policy import apply_oci

        # The user namespace and its maps, the seccomp filter, the masked and read-only
        # paths and the AppArmor profile, as the LXC config gets them.
        apply_oci(config, spec.security)
    return config
