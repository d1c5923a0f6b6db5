"""The cgroup v1 and v2 files that realise a container's limits: a pure function of them.

Devices in the limits must already be ``MAJOR:MINOR`` (richc.hostfacts.resolve_devices
turns paths into numbers), so nothing here touches the host. The LXC runtime writes these
files as ``lxc.cgroup[2].*`` keys; the runc renderer reads the same typed limits.
"""

from __future__ import annotations

from richc.config.limits import (
    CPU_PERIOD_US,
    DEVICE_THROTTLES,
    IO_WEIGHT_DEFAULT,
    SHARES_DEFAULT,
    SHARES_MAX,
    SHARES_MIN,
    WEIGHT_DEFAULT,
    WEIGHT_MAX,
    Limits,
    is_major_minor,
)
from richc.sizes import format_cpuset


def cpu_quota_us(cpus: float) -> int:
    return round(cpus * CPU_PERIOD_US)


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares -> v2 cpu.weight, the mapping runc and systemd use."""
    return 1 + ((shares - SHARES_MIN) * (WEIGHT_MAX - 1)) // (SHARES_MAX - SHARES_MIN)


def weight_to_shares(weight: int) -> int:
    return SHARES_MIN + ((weight - 1) * (SHARES_MAX - SHARES_MIN)) // (WEIGHT_MAX - 1)


def device_number(device: str) -> str:
    """*device* as resolved before rendering; a path here is a caller's bug."""
    if not is_major_minor(device):
        raise ValueError(f"device {device!r} not resolved to MAJOR:MINOR before rendering")
    return device


def default_io_weight_file(version: int) -> str:
    return "io.bfq.weight" if version == 2 else "blkio.bfq.weight"


def cgroup_files(
    limits: Limits, version: int, *, io_weight_file: str | None = None
) -> tuple[tuple[str, str], ...]:
    """The cgroup files and values that realise *limits* on cgroup *version*, in write order.

    A file may appear more than once (one line per device). On v1 the memory limit comes
    before memory+swap, as the kernel wants when both are set from the defaults.
    """
    out: list[tuple[str, str]] = []
    weight_file = io_weight_file or default_io_weight_file(version)
    memory: list[tuple[str, str]] = []
    if version == 2:
        if limits.memory is not None:
            memory.append(("memory.max", str(limits.memory)))
        if limits.memory_swap is not None and limits.memory is not None:
            memory.append(("memory.swap.max", str(limits.memory_swap - limits.memory)))
        if limits.memory_reservation is not None:
            memory.append(("memory.low", str(limits.memory_reservation)))
        if limits.cpus is not None:
            out.append(("cpu.max", f"{cpu_quota_us(limits.cpus)} {CPU_PERIOD_US}"))
        weight = limits.cpu_weight
        if weight is None and limits.cpu_shares is not None:
            weight = shares_to_weight(limits.cpu_shares)
        if weight is not None:
            out.append(("cpu.weight", str(weight)))
        if limits.cpuset is not None:
            out.append(("cpuset.cpus", format_cpuset(limits.cpuset)))
        if limits.pids is not None:
            out.append(("pids.max", str(limits.pids)))
        if limits.io_weight is not None:
            out.append((weight_file, str(limits.io_weight)))
        for device, fields in _io_max(limits).items():
            out.append(("io.max", f"{device} " + " ".join(f"{k}={v}" for k, v in fields)))
    else:
        if limits.memory is not None:
            memory.append(("memory.limit_in_bytes", str(limits.memory)))
        if limits.memory_swap is not None:
            memory.append(("memory.memsw.limit_in_bytes", str(limits.memory_swap)))
        if limits.memory_reservation is not None:
            memory.append(("memory.soft_limit_in_bytes", str(limits.memory_reservation)))
        if limits.cpus is not None:
            out.append(("cpu.cfs_period_us", str(CPU_PERIOD_US)))
            out.append(("cpu.cfs_quota_us", str(cpu_quota_us(limits.cpus))))
        shares = limits.cpu_shares
        if shares is None and limits.cpu_weight is not None:
            shares = weight_to_shares(limits.cpu_weight)
        if shares is not None:
            out.append(("cpu.shares", str(shares)))
        if limits.cpuset is not None:
            out.append(("cpuset.cpus", format_cpuset(limits.cpuset)))
        if limits.pids is not None:
            out.append(("pids.max", str(limits.pids)))
        if limits.io_weight is not None:
            out.append((weight_file, str(limits.io_weight)))
        for key, filename, _ in DEVICE_THROTTLES:
            for device, rate in getattr(limits, key):
                out.append((filename, f"{device_number(device)} {rate}"))
    # Memory last: lowering it is the write a live container most often refuses (usage
    # above the new limit), and then the writes before it are undone.
    return (*out, *memory)


def _io_max(limits: Limits) -> dict[str, list[tuple[str, int]]]:
    per_device: dict[str, list[tuple[str, int]]] = {}
    for key, _, field_name in DEVICE_THROTTLES:
        for device, rate in getattr(limits, key):
            per_device.setdefault(device_number(device), []).append((field_name, rate))
    return per_device


def rlimits(limits: Limits) -> tuple[tuple[str, int, int], ...]:
    """The container's rlimits as (name, soft, hard); RLIM_INFINITY for unlimited."""
    return limits.ulimits


# -- live apply --------------------------------------------------------------------------------


def reset_value(filename: str, line: str | None = None) -> str:
    """The value that lifts the limit in *filename* (for the device in *line*, if keyed)."""
    device = line.split()[0] if line else ""
    resets = {
        "memory.limit_in_bytes": "-1",
        "memory.memsw.limit_in_bytes": "-1",
        "memory.soft_limit_in_bytes": "-1",
        "cpu.cfs_quota_us": "-1",
        "cpu.cfs_period_us": str(CPU_PERIOD_US),
        "cpu.shares": str(SHARES_DEFAULT),
        "pids.max": "max",
        "blkio.weight": str(IO_WEIGHT_DEFAULT * 5),  # CFQ's default is 500
        "blkio.bfq.weight": str(IO_WEIGHT_DEFAULT),
        "memory.max": "max",
        "memory.swap.max": "max",
        "memory.low": "0",
        "cpu.max": f"max {CPU_PERIOD_US}",
        "cpu.weight": str(WEIGHT_DEFAULT),
        "io.bfq.weight": str(IO_WEIGHT_DEFAULT),
        "io.weight": str(WEIGHT_DEFAULT),
        "io.max": f"{device} rbps=max wbps=max riops=max wiops=max",
    }
    if filename.startswith("blkio.throttle."):
        return f"{device} 0"
    return resets[filename]
