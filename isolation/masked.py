"""Paths of /proc and /sys a container must not see or must not write, as data, and their
renderings for LXC (``lxc.mount.entry`` lines) and runc (``linux.maskedPaths`` and
``linux.readonlyPaths``).

The lists follow Podman's defaults: masked paths leak host information (kernel memory,
the keyring, other tenants' timers and scheduling, firmware tables, power-capping energy
counters that side channels read); read-only paths let root change host-wide state
(interrupt routing, bus devices, filesystem tunables, sysctls, the magic SysRq key).

LXC: ``lxc.mount.auto = proc:mixed`` (richc's setting) already binds /proc/sys read-only,
except /proc/sys/net, which stays writable for the container's own network namespace,
and /proc/sysrq-trigger read-only; those two are not rendered again. ``sys:ro`` makes all
of /sys read-only, so /sys needs masks only. A masked file gets the host's /dev/null bound
over it (not the container's: the autodev /dev is filled after mount entries run); a masked
directory gets an empty read-only tmpfs; a read-only path is bound onto itself read-only
from the container's own /proc (``relative``). Every line is ``optional``: a path this
kernel lacks (/proc/timer_stats is gone since 4.11, /proc/sched_debug since 5.13) is
skipped, as runc skips it.

runc applies the OCI lists the same way. Its readonlyPaths bind all of /proc/sys read-only,
/proc/sys/net included: runc refuses mounts below /proc, so the LXC exception cannot be
rendered for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    FILE = "file"
    DIR = "dir"


@dataclass(frozen=True)
class HiddenPath:
    path: str
    kind: Kind
    reason: str


MASKED: tuple[HiddenPath, ...] = (
    HiddenPath("/proc/acpi", Kind.DIR, "ACPI event and device state of the host"),
    HiddenPath("/proc/kcore", Kind.FILE, "the host's physical memory as an ELF core"),
    HiddenPath("/proc/keys", Kind.FILE, "keys of the host keyring visible to the caller"),
    HiddenPath("/proc/latency_stats", Kind.FILE, "kernel latency records of host processes"),
    HiddenPath("/proc/timer_list", Kind.FILE, "every pending timer of the host, with tasks"),
    HiddenPath("/proc/timer_stats", Kind.FILE, "timer usage by process (before Linux 4.11)"),
    HiddenPath("/proc/sched_debug", Kind.FILE, "scheduler state of every host task (before 5.13)"),
    HiddenPath("/proc/scsi", Kind.DIR, "SCSI host adapters; writable 'scsi' adds devices"),
    HiddenPath("/sys/firmware", Kind.DIR, "ACPI tables, EFI variables and firmware memory maps"),
    HiddenPath(
        "/sys/devices/virtual/powercap",
        Kind.DIR,
        "RAPL energy counters, a side channel on other tenants (Platypus, CVE-2020-8694)",
    ),
)

READONLY: tuple[HiddenPath, ...] = (
    HiddenPath("/proc/asound", Kind.DIR, "sound card controls of the host"),
    HiddenPath("/proc/bus", Kind.DIR, "PCI and input device configuration"),
    HiddenPath("/proc/fs", Kind.DIR, "filesystem tunables (nfsd, ext4 options)"),
    HiddenPath("/proc/irq", Kind.DIR, "interrupt CPU affinity of the host"),
    HiddenPath("/proc/sys", Kind.DIR, "kernel sysctls (host-wide except a few namespaced ones)"),
    HiddenPath("/proc/sysrq-trigger", Kind.FILE, "the magic SysRq key: reboot, crash, OOM kill"),
)

# What LXC's proc:mixed already makes read-only.
PROC_MIXED_READONLY = frozenset({"/proc/sys", "/proc/sysrq-trigger"})

_DIR_MASK_OPTIONS = "ro,nosuid,nodev,noexec,mode=0555,size=4k,optional"


def lxc_mount_entries(
    masked: tuple[HiddenPath, ...] = MASKED,
    readonly: tuple[HiddenPath, ...] = READONLY,
    *,
    proc_mixed: bool = True,
) -> list[tuple[str, str]]:
    """``("lxc.mount.entry", "SOURCE TARGET TYPE OPTIONS 0 0")`` pairs, in order: masks
    after read-only binds, so a mask inside a read-only tree still applies."""
    keys = []
    for item in readonly:
        if proc_mixed and item.path in PROC_MIXED_READONLY:
            continue
        target = item.path.lstrip("/")
        keys.append(("lxc.mount.entry", f"{target} {target} none bind,ro,relative,optional 0 0"))
    for item in masked:
        target = item.path.lstrip("/")
        if item.kind is Kind.FILE:
            keys.append(("lxc.mount.entry", f"/dev/null {target} none bind,ro,optional 0 0"))
        else:
            keys.append(("lxc.mount.entry", f"tmpfs {target} tmpfs {_DIR_MASK_OPTIONS} 0 0"))
    return keys


def oci_paths(
    masked: tuple[HiddenPath, ...] = MASKED, readonly: tuple[HiddenPath, ...] = READONLY
) -> dict[str, list[str]]:
    """``maskedPaths`` and ``readonlyPaths`` to merge into a config.json's ``linux``."""
    return {
        "maskedPaths": [item.path for item in masked],
        "readonlyPaths": [item.path for item in readonly],
    }
