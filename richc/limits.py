"""Resource limits: parsing and validation, their cgroup v1/v2 files, and live apply.

richc.oci renders the OCI ``linux.resources`` from the cgroup files here, so both runtimes
get the same values.

A limit that is accepted but not applied is worse than an error, so everything here fails
closed: values the kernel would refuse, or silently round to nothing, are refused with the
key, the value and a hint. :func:`check` needs nothing from the host; :func:`check_host`
compares against :class:`HostLimits` (the CPUs online, the controllers and files present),
which tests build by hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from richc.config import Limits
from richc.errors import ConfigError, RichcError
from richc.units import format_cpuset, format_size, parse_cpuset, parse_positive_int, parse_size

log = logging.getLogger("richc.limits")

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


# -- parsing (called from richc.config while it validates a limits mapping) ----------------


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
        if not (device.startswith("/") or _is_major_minor(device)):
            raise ConfigError(
                key, device, "not a block device", hint="name it as /dev/NAME or MAJOR:MINOR"
            )
        if bytes_per_second:
            out[device] = parse_size(f"{key}.{device}", rate)
        else:
            out[device] = parse_positive_int(f"{key}.{device}", rate)
    return tuple(sorted(out.items()))


def _is_major_minor(text: str) -> bool:
    major, sep, minor = text.partition(":")
    return bool(sep) and major.isdigit() and minor.isdigit()


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
    if limits.cpus is not None and cpu_quota_us(limits.cpus) < MIN_CPU_QUOTA_US:
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
    if limits.cpuset is not None and not limits.cpuset:
        raise ConfigError("limits.cpuset", "", "names no CPU", hint="e.g. 0 or 0-1")


def _in_range(key: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise ConfigError(key, value, f"out of range {low} to {high}")


@dataclass(frozen=True)
class HostLimits:
    """The host facts limits are checked against. ``read_host`` fills it in."""

    cgroup_version: int
    online_cpus: tuple[int, ...]
    controllers: tuple[str, ...]  # controllers of the limits' hierarchy
    swap_accounting: bool | None = None  # None: unknown, do not refuse
    io_weight_file: str | None = None  # blkio.bfq.weight / io.bfq.weight / ..., or none

    @property
    def cpu_count(self) -> int:
        return len(self.online_cpus)


def check_host(limits: Limits, host: HostLimits) -> None:
    """Refuse limits this host cannot apply: CPUs it lacks, controllers or devices it lacks."""
    if limits.cpus is not None and limits.cpus > host.cpu_count:
        raise ConfigError(
            "limits.cpus",
            limits.cpus,
            f"more than the host's {host.cpu_count} CPUs",
            hint=f"use at most --cpus {host.cpu_count}",
        )
    if limits.cpuset is not None:
        missing = sorted(set(limits.cpuset) - set(host.online_cpus))
        if missing:
            raise ConfigError(
                "limits.cpuset",
                format_cpuset(limits.cpuset),
                f"names CPUs the host does not have online: {format_cpuset(tuple(missing))}",
                hint=f"the host's CPUs are {format_cpuset(host.online_cpus)}",
            )
    needs = {
        "memory": limits.memory or limits.memory_swap or limits.memory_reservation,
        "cpu": limits.cpus or limits.cpu_shares or limits.cpu_weight,
        "cpuset": limits.cpuset,
        "pids": limits.pids,
        "blkio" if host.cgroup_version == 1 else "io": limits.io_weight
        or any(getattr(limits, key) for key, _, _ in DEVICE_THROTTLES),
    }
    for controller, wanted in needs.items():
        if wanted and controller not in host.controllers:
            raise ConfigError(
                "limits",
                controller,
                f"the host's cgroup v{host.cgroup_version} hierarchy has no {controller}"
                " controller",
                hint="see `richc doctor`; drop this limit or enable the controller",
            )
    if limits.memory_swap is not None and host.swap_accounting is False:
        raise ConfigError(
            "limits.memory_swap",
            format_size(limits.memory_swap),
            "the kernel does not account swap per cgroup",
            hint="boot with swapaccount=1 (cgroup v1), or drop --memory-swap",
        )
    if limits.io_weight is not None and host.io_weight_file is None:
        raise ConfigError(
            "limits.io_weight",
            limits.io_weight,
            "the kernel has no IO weight for cgroups (no BFQ or CFQ scheduler, no iocost)",
            hint="modprobe bfq and select it for the disk, or drop --io-weight",
        )
    for key, _, _ in DEVICE_THROTTLES:
        for device, _rate in getattr(limits, key):
            _check_device(f"limits.{key}", device)


def _check_device(key: str, device: str) -> None:
    try:
        number = device_number(device)
    except ConfigError as exc:
        raise ConfigError(key, device, exc.message.split(": ", 2)[-1]) from None
    sysfs = Path("/sys/dev/block") / number
    if not sysfs.exists():
        raise ConfigError(key, device, "no such block device on this host", hint="see lsblk")
    if (sysfs / "partition").exists():
        raise ConfigError(
            key, device, "is a partition; IO throttles apply to whole disks", hint="see lsblk"
        )


def read_host(version: int, root: Path = Path("/")) -> HostLimits:
    """The host's limit facts: CPUs online, the controllers of *version*, IO weight and swap."""
    from richc import cgroups

    online_text = ""
    with contextlib.suppress(OSError):
        online_text = (root / "sys/devices/system/cpu/online").read_text().strip()
    online = parse_cpuset("cpu/online", online_text) if online_text else (0,)
    mounts = cgroups.CgroupMounts()
    with contextlib.suppress(OSError):
        mounts = cgroups.host_mounts(str(root / "proc/self/mountinfo"))
    bfq = _has_bfq(root)
    if version == 2 and mounts.v2 is not None:
        base = root / str(mounts.v2).lstrip("/")
        controllers = tuple(_read_words(base / "cgroup.subtree_control")) or tuple(
            _read_words(base / "cgroup.controllers")
        )
        swap = _any_child_has(base, "memory.swap.max")
        io_weight = (
            "io.bfq.weight" if bfq else ("io.weight" if (base / "io.cost.qos").exists() else None)
        )
    else:
        controllers = tuple(mounts.v1)
        memory = mounts.v1.get("memory")
        swap = None
        if memory is not None:
            swap = (root / str(memory).lstrip("/") / "memory.memsw.limit_in_bytes").exists()
        blkio = mounts.v1.get("blkio")
        io_weight = None
        if blkio is not None and (root / str(blkio).lstrip("/") / "blkio.weight").exists():
            io_weight = "blkio.weight"  # CFQ (kernels before 5.0)
        elif bfq:
            io_weight = "blkio.bfq.weight"
    return HostLimits(
        cgroup_version=version,
        online_cpus=online,
        controllers=controllers,
        swap_accounting=swap,
        io_weight_file=io_weight,
    )


def _has_bfq(root: Path) -> bool:
    # BFQ registers its cgroup policy (the *.bfq.weight files) when the scheduler registers,
    # built in or as a module; every disk then lists it among its schedulers.
    if (root / "sys/module/bfq").exists():
        return True
    with contextlib.suppress(OSError):
        for queue in (root / "sys/block").iterdir():
            if "bfq" in _read_words(queue / "queue/scheduler") or "[bfq]" in _read_words(
                queue / "queue/scheduler"
            ):
                return True
    return False


def _read_words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def _any_child_has(base: Path, filename: str) -> bool | None:
    # memory.swap.max exists only below the root cgroup; an empty tree tells nothing.
    with contextlib.suppress(OSError):
        for child in base.iterdir():
            if child.is_dir():
                return (child / filename).exists()
    return None


# -- cgroup files ------------------------------------------------------------------------------


def cpu_quota_us(cpus: float) -> int:
    return round(cpus * CPU_PERIOD_US)


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares -> v2 cpu.weight, the mapping runc and systemd use."""
    return 1 + ((shares - SHARES_MIN) * (WEIGHT_MAX - 1)) // (SHARES_MAX - SHARES_MIN)


def weight_to_shares(weight: int) -> int:
    return SHARES_MIN + ((weight - 1) * (SHARES_MAX - SHARES_MIN)) // (WEIGHT_MAX - 1)


def device_number(device: str) -> str:
    """``MAJOR:MINOR`` of a block device given by path or already as numbers.

    Raises ConfigError (not OSError) when a path has gone since the limit was set, so a
    start after a device disappeared says which limit names it.
    """
    if _is_major_minor(device):
        return device
    try:
        st = os.stat(device)
    except OSError as exc:
        raise ConfigError("device", device, f"cannot use it: {exc.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise ConfigError("device", device, "cannot use it: not a block device")
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


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


class LiveApplyError(RichcError):
    """A cgroup write failed; the writes before it were rolled back."""


@dataclass(frozen=True)
class Write:
    filename: str
    value: str
    undo: str


def _keyed(filename: str) -> bool:
    return filename.startswith("blkio.throttle.") or filename == "io.max"


def _current_line(text: str, device: str) -> str | None:
    for line in text.splitlines():
        if line.split(" ", 1)[0] == device:
            return line
    return None


def plan_writes(
    old: Limits,
    new: Limits,
    version: int,
    read: Any,
    *,
    io_weight_file: str | None = None,
) -> list[Write]:
    """The writes that take a running container from *old* to *new*, each with its undo.

    *read(filename)* returns the file's current text (for the undo values).
    """
    before = cgroup_files(old, version, io_weight_file=io_weight_file)
    after = cgroup_files(new, version, io_weight_file=io_weight_file)
    wanted: list[tuple[str, str]] = [item for item in after if item not in before]
    # Limits that are gone are lifted.
    after_keys = {(f, v.split()[0] if _keyed(f) else "") for f, v in after}
    for filename, value in before:
        key = (filename, value.split()[0] if _keyed(filename) else "")
        if key not in after_keys:
            wanted.append((filename, reset_value(filename, value)))
    if version == 1:
        wanted = _order_v1_memory(wanted, read)
    writes: list[Write] = []
    cache: dict[str, str] = {}
    for filename, value in wanted:
        if filename not in cache:
            cache[filename] = read(filename).strip()
        current = cache[filename]
        if _keyed(filename):
            device = value.split()[0]
            undo = _current_line(current, device) or reset_value(filename, value)
            if filename.startswith("blkio.throttle."):
                undo = " ".join(undo.split()[:2])
        else:
            undo = current
        writes.append(Write(filename, value, undo))
    return writes


def _order_v1_memory(wanted: list[tuple[str, str]], read: Any) -> list[tuple[str, str]]:
    # v1 demands memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every moment:
    # raising both, memsw goes first; lowering both, memory goes first.
    files = [f for f, _ in wanted]
    if "memory.limit_in_bytes" not in files or "memory.memsw.limit_in_bytes" not in files:
        return wanted
    new_memory = dict(wanted)["memory.limit_in_bytes"]
    try:
        current = int(read("memory.limit_in_bytes").strip())
    except (OSError, ValueError):
        return wanted
    rising = int(new_memory) < 0 or int(new_memory) > current
    if not rising:
        return wanted
    swap = [item for item in wanted if item[0] == "memory.memsw.limit_in_bytes"]
    rest = [item for item in wanted if item[0] != "memory.memsw.limit_in_bytes"]
    return swap + rest


def apply_writes(writes: Sequence[Write], write: Any) -> None:
    """Write each value with *write(filename, value)*; on a failure undo the earlier ones."""
    done: list[Write] = []
    for item in writes:
        try:
            write(item.filename, item.value)
        except OSError as exc:
            failed_undo: list[str] = []
            for previous in reversed(done):
                try:
                    write(previous.filename, previous.undo)
                except OSError as undo_exc:
                    failed_undo.append(f"{previous.filename} ({undo_exc.strerror})")
            message = (
                f"cannot write {item.value!r} to {exc.filename or item.filename}: {exc.strerror}"
            )
            hint = _write_hint(item.filename, exc.errno)
            if failed_undo:
                message += "; could not restore " + ", ".join(failed_undo)
            else:
                message += "; nothing was changed"
            raise LiveApplyError(message, hint=hint) from None
        done.append(item)
        log.debug("cgroup %s = %s", item.filename, item.value)


def _write_hint(filename: str, code: int | None) -> str | None:
    if filename.startswith("memory.") and code == 16:  # EBUSY: usage above the new limit
        return "the container uses more memory than the new limit; free some or pick more"
    if filename.startswith("cpuset."):
        return "the CPUs must be online and allowed to the parent cgroup"
    if code == 2:
        return "the kernel does not provide this cgroup file; see `richc doctor`"
    return None


def host_for(run_dir: Path | None) -> HostLimits:
    """This host's limit facts, for the cgroup version the spec renders limits for."""
    from richc.hostfacts import host_facts

    return read_host(host_facts(run_dir).cgroup_version)


def validate_for_host(limits: Limits, run_dir: Path | None) -> None:
    """``check`` plus ``check_host`` against this host: what create and set call."""
    check(limits)
    if limits == Limits():
        return
    check_host(limits, host_for(run_dir))
