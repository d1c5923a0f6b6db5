"""Resource limits in a container's config: the model, its parsing and validation.

A limit that is accepted but not applied is worse than an error, so everything here fails
closed: values the kernel would refuse, or silently round to nothing, are refused with the
key, the value and a hint. Nothing here reads the host; richc.hostfacts checks limits
against the host, richc.spec.cgroupfiles renders them as cgroup files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from richc.errors import ConfigError
from richc.sizes import (
    MAX_PIDS,
    format_cpuset,
    format_size,
    parse_cpus,
    parse_cpuset,
    parse_positive_int,
    parse_size,
)

# The smallest memory limit a container can boot with; Docker and runc refuse less, too.
MIN_MEMORY = 6 << 20
# CFS refuses a quota below 1 ms per period (kernel/sched/core.c, min_cfs_quota_period).
CPU_PERIOD_US = 100_000
MIN_CPU_QUOTA_US = 1_000
# cgroup v1 cpu.shares and v2 cpu.weight ranges (kernel/sched/core.c), and their defaults.
SHARES_MIN, SHARES_MAX, SHARES_DEFAULT = 2, 262_144, 1024
WEIGHT_MIN, WEIGHT_MAX, WEIGHT_DEFAULT = 1, 10_000, 100
# The OCI blockIO.weight range, the same as BFQ's blkio.bfq.weight / io.bfq.weight.
IO_WEIGHT_MIN, IO_WEIGHT_MAX, IO_WEIGHT_DEFAULT = 10, 1000, 100
# RLIM_INFINITY from <sys/resource.h> on 64-bit Linux; LXC's lxc.prlimit parses it as a number.
RLIM_INFINITY = (1 << 64) - 1
# The resources lxc.prlimit and OCI process.rlimits know (setrlimit(2) names, lower case).
RLIMIT_NAMES = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip
# Per-device throttles: the limits key, the v1 file, and the v2 io.max field.
DEVICE_THROTTLES = (
    ("device_read_bps", "blkio.throttle.read_bps_device", "rbps"),
    ("device_write_bps", "blkio.throttle.write_bps_device", "wbps"),
    ("device_read_iops", "blkio.throttle.read_iops_device", "riops"),
    ("device_write_iops", "blkio.throttle.write_iops_device", "wiops"),
)

DEVICE_LIMIT_KEYS = ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops")
LIMIT_KEYS = {
    "memory", "memory_swap", "memory_reservation", "cpus", "cpu_shares", "cpu_weight", "cpuset",
    "pids", "io_weight", *DEVICE_LIMIT_KEYS, "ulimits",
}  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """Resource limits; validated here; richc.spec.cgroupfiles maps them to cgroup files."""

    memory: int | None = None
    memory_swap: int | None = None  # memory plus swap, as Docker's --memory-swap
    memory_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None  # cgroup v1 scale (2..262144); converted on v2
    cpu_weight: int | None = None  # cgroup v2 scale (1..10000); converted on v1
    cpuset: tuple[int, ...] | None = None
    pids: int | None = None
    io_weight: int | None = None  # 10..1000, BFQ's scale
    device_read_bps: tuple[tuple[str, int], ...] = ()  # (device path or MAJ:MIN, rate)
    device_write_bps: tuple[tuple[str, int], ...] = ()
    device_read_iops: tuple[tuple[str, int], ...] = ()
    device_write_iops: tuple[tuple[str, int], ...] = ()
    ulimits: tuple[tuple[str, int, int], ...] = ()  # (name, soft, hard); 2**64-1 = unlimited

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("memory", "memory_swap", "memory_reservation", "cpus", "cpu_shares",
                    "cpu_weight"):  # fmt: skip
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.cpuset is not None:
            out["cpuset"] = format_cpuset(self.cpuset)
        for key in ("pids", "io_weight"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for key in DEVICE_LIMIT_KEYS:
            if getattr(self, key):
                out[key] = dict(getattr(self, key))
        if self.ulimits:
            out["ulimits"] = {
                name: f"{format_rlimit(soft)}:{format_rlimit(hard)}"
                for name, soft, hard in self.ulimits
            }
        return out


# -- parsing ---------------------------------------------------------------------------------


def parse_device_rates(
    key: str, raw: object, *, bytes_per_second: bool
) -> tuple[tuple[str, int], ...]:
    """``{DEVICE: RATE}`` or ``["DEVICE:RATE", ...]`` -> sorted ``((DEVICE, RATE), ...)``.

    DEVICE is a block device path or ``MAJOR:MINOR``; RATE a size per second (``10M``) for
    bps, a count for iops.
    """
    items: list[tuple[str, object]] = []
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        items = [(str(dev), rate) for dev, rate in raw.items()]
    elif isinstance(raw, list | tuple | str):
        for entry in [raw] if isinstance(raw, str) else raw:
            for part in str(entry).split(","):
                dev, sep, text = part.strip().rpartition(":")
                if not sep or not dev:
                    raise ConfigError(
                        key, entry, "expected DEVICE:RATE", hint="e.g. /dev/sda:10M or 8:0:10M"
                    )
                items.append((dev, text))
    else:
        raise ConfigError(key, raw, "expected a mapping of device to rate")
    out: dict[str, int] = {}
    for device, rate in items:
        if not (device.startswith("/") or is_major_minor(device)):
            raise ConfigError(
                key, device, "not a block device", hint="name it as /dev/NAME or MAJOR:MINOR"
            )
        if bytes_per_second:
            out[device] = parse_size(f"{key}.{device}", rate)
        else:
            out[device] = parse_positive_int(f"{key}.{device}", rate)
    return tuple(sorted(out.items()))


def _rlimit_value(key: str, value: object) -> int:
    if str(value).strip().lower() in ("unlimited", "infinity", "-1"):
        return RLIM_INFINITY
    if isinstance(value, bool):
        raise ConfigError(key, value, "expected a whole number or unlimited")
    try:
        number = int(str(value).strip(), 10)
    except ValueError:
        raise ConfigError(key, value, "expected a whole number or unlimited") from None
    if number < 0:
        raise ConfigError(key, value, "must not be negative")
    return number


def parse_ulimits(key: str, raw: object) -> tuple[tuple[str, int, int], ...]:
    """``{nofile: "1024:2048", nproc: 512}`` -> ``(("nofile", 1024, 2048), ...)``.

    A value is ``SOFT:HARD``, one number for both, ``[SOFT, HARD]`` or ``{soft, hard}``.
    """
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ConfigError(key, raw, "expected a mapping such as {nofile: 1024:2048}")
    out: dict[str, tuple[int, int]] = {}
    for name, value in raw.items():
        where = f"{key}.{name}"
        if str(name) not in RLIMIT_NAMES:
            raise ConfigError(
                key, name, "unknown resource limit", hint=f"known: {', '.join(RLIMIT_NAMES)}"
            )
        if isinstance(value, Mapping):
            soft_raw, hard_raw = value.get("soft"), value.get("hard", value.get("soft"))
        elif isinstance(value, list | tuple) and len(value) == 2:
            soft_raw, hard_raw = value
        elif isinstance(value, list | tuple):
            raise ConfigError(where, value, "expected [SOFT, HARD]")
        else:
            soft_raw, _, hard_raw = str(value).partition(":")
            hard_raw = hard_raw or soft_raw
        if soft_raw is None or soft_raw == "":
            raise ConfigError(where, value, "expected SOFT:HARD, e.g. 1024:2048")
        soft, hard = _rlimit_value(where, soft_raw), _rlimit_value(where, hard_raw)
        if soft > hard:
            raise ConfigError(
                where, value, "the soft limit is above the hard limit", hint="write SOFT:HARD"
            )
        out[str(name)] = (soft, hard)
    return tuple((name, soft, hard) for name, (soft, hard) in sorted(out.items()))


def parse_ulimit_flags(items: Sequence[str]) -> dict[str, str]:
    """Repeated ``--ulimit nofile=1024:2048`` flags -> ``{"nofile": "1024:2048"}``."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(
                "--ulimit", item, "expected NAME=SOFT[:HARD]", hint="nofile=1024:2048"
            )
        out[name] = value
    return out


def format_rlimit(value: int) -> str | int:
    return "unlimited" if value == RLIM_INFINITY else value


# -- validation ------------------------------------------------------------------------------


def check(limits: Limits) -> None:
    """Refuse values no host accepts: too small to run, inconsistent with each other."""
    if limits.memory is not None and limits.memory < MIN_MEMORY:
        raise ConfigError(
            "limits.memory",
            format_size(limits.memory),
            "below the 6 MiB minimum a container needs",
            hint="use at least --memory 6M",
        )
    if limits.memory_swap is not None:
        if limits.memory is None:
            raise ConfigError(
                "limits.memory_swap",
                format_size(limits.memory_swap),
                "a swap limit needs a memory limit",
                hint="set --memory too; --memory-swap is memory plus swap, as in Docker",
            )
        if limits.memory_swap < limits.memory:
            raise ConfigError(
                "limits.memory_swap",
                format_size(limits.memory_swap),
                f"below the memory limit ({format_size(limits.memory)})",
                hint="--memory-swap is memory plus swap: make it at least --memory",
            )
    if limits.memory_reservation is not None:
        if limits.memory_reservation < MIN_MEMORY:
            raise ConfigError(
                "limits.memory_reservation",
                format_size(limits.memory_reservation),
                "below the 6 MiB minimum",
                hint="use at least 6M",
            )
        if limits.memory is not None and limits.memory_reservation > limits.memory:
            raise ConfigError(
                "limits.memory_reservation",
                format_size(limits.memory_reservation),
                f"above the memory limit ({format_size(limits.memory)})",
                hint="a reservation is a soft floor below --memory",
            )
    if limits.cpus is not None and round(limits.cpus * CPU_PERIOD_US) < MIN_CPU_QUOTA_US:
        raise ConfigError(
            "limits.cpus",
            limits.cpus,
            f"a CPU quota below 1 ms per {CPU_PERIOD_US // 1000} ms period",
            hint="use at least --cpus 0.01",
        )
    if limits.cpu_shares is not None and limits.cpu_weight is not None:
        raise ConfigError(
            "limits.cpu_weight",
            limits.cpu_weight,
            "give cpu_shares or cpu_weight, not both",
            hint="cpu_shares is the cgroup v1 scale, cpu_weight the v2 one; richc converts",
        )
    _in_range("limits.cpu_shares", limits.cpu_shares, SHARES_MIN, SHARES_MAX)
    _in_range("limits.cpu_weight", limits.cpu_weight, WEIGHT_MIN, WEIGHT_MAX)
    _in_range("limits.io_weight", limits.io_weight, IO_WEIGHT_MIN, IO_WEIGHT_MAX)
    if limits.pids is not None and limits.pids > MAX_PIDS:
        raise ConfigError(
            "limits.pids", limits.pids, f"above the kernel's maximum of {MAX_PIDS} processes"
        )
    if limits.cpuset is not None and not limits.cpuset:
        raise ConfigError("limits.cpuset", "", "names no CPU", hint="e.g. 0 or 0-1")


def _in_range(key: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise ConfigError(key, value, f"out of range {low} to {high}")


def parse_limits(raw: object) -> Limits:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError("limits", raw, "expected a mapping")
    data = raw
    unknown = set(data) - LIMIT_KEYS
    if unknown:
        bad = sorted(unknown, key=str)[0]
        raise ConfigError(f"limits.{bad}", data[bad], "unknown limit")

    def opt(key: str, parse: Any) -> Any:
        value = data.get(key)
        return None if value is None else parse(f"limits.{key}", value)

    limits = Limits(
        memory=opt("memory", parse_size),
        memory_swap=opt("memory_swap", parse_size),
        memory_reservation=opt("memory_reservation", parse_size),
        cpus=opt("cpus", parse_cpus),
        cpu_shares=opt("cpu_shares", parse_positive_int),
        cpu_weight=opt("cpu_weight", parse_positive_int),
        cpuset=opt("cpuset", parse_cpuset),
        pids=opt("pids", parse_positive_int),
        io_weight=opt("io_weight", parse_positive_int),
        **{
            key: parse_device_rates(
                f"limits.{key}", data.get(key), bytes_per_second=key.endswith("bps")
            )
            for key in DEVICE_LIMIT_KEYS
        },
        ulimits=parse_ulimits("limits.ulimits", data.get("ulimits")),
    )
    check(limits)
    return limits


def is_major_minor(text: str) -> bool:
    major, sep, minor = text.partition(":")
    return bool(sep) and major.isdigit() and minor.isdigit()
