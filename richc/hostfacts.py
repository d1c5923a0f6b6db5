"""The host facts the spec needs, from the same probe `richc doctor` reports.

Importing and running the probe costs ~25 ms, paid on every start otherwise. The facts it
gives the spec (cgroup layout, namespaces, AppArmor) cannot change without a reboot, so
they are cached under the run directory keyed by the kernel's boot id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from richc import __version__, cgroups
from richc.config.limits import DEVICE_THROTTLES, Limits, check, is_major_minor
from richc.errors import ConfigError
from richc.sizes import format_cpuset, format_size, parse_cpuset
from richc.spec import HostFacts


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _apparmor_confines(root: str) -> bool:
    from isolation import apparmor

    return bool(apparmor.status(root))


def probe_facts(root: str = "/") -> HostFacts:
    from richc.probe import host_features

    features = host_features(root)
    version = features.cgroup_version or 1
    return HostFacts(
        cgroup_version=version,
        apparmor=features.apparmor,
        apparmor_confines=features.apparmor and _apparmor_confines(root),
        cgroup_namespace=features.use_cgroup_ns,
        cgroup_mount=features.lxc_cgroup_mount,
        # BFQ's weight file where BFQ is there, else CFQ's (v1) or iocost's (v2): a file
        # the kernel lacks makes LXC abort the start.
        io_weight_file=read_host(version, Path(root)).io_weight_file,
    )


def host_facts(run_dir: Path | None = None) -> HostFacts:
    """The host's facts, from the boot's cache in *run_dir* when there is one."""
    if run_dir is None:
        return probe_facts()
    cache = run_dir / "hostfacts.json"
    # An upgraded richc may decide differently: the probe's own files are part of the key.
    here = Path(__file__).parent
    sources = [*(here / "probe").glob("*.py"), here / "hostfacts.py"]
    stamp = max((f.stat().st_mtime_ns for f in sources), default=0)
    key = {"boot_id": _boot_id(), "richc": __version__, "probe": stamp}
    with contextlib.suppress(OSError, ValueError, TypeError):
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return HostFacts(**data["facts"])
    facts = probe_facts()
    if key["boot_id"]:
        from richc.store import write_atomic

        with contextlib.suppress(OSError):
            write_atomic(cache, json.dumps({"key": key, "facts": dataclasses.asdict(facts)}))
    return facts


# -- limits against the host ------------------------------------------------------------------


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


def device_number(device: str) -> str:
    """``MAJOR:MINOR`` of a block device given by path or already as numbers.

    Raises ConfigError (not OSError) when a path has gone since the limit was set, so a
    start after a device disappeared says which limit names it.
    """
    if is_major_minor(device):
        return device
    try:
        st = os.stat(device)
    except OSError as exc:
        raise ConfigError("device", device, f"cannot use it: {exc.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise ConfigError("device", device, "cannot use it: not a block device")
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def resolve_devices(limits: Limits) -> Limits:
    """*limits* with every throttled device as ``MAJOR:MINOR``, ready to render."""
    changes: dict[str, Any] = {
        key: tuple((device_number(device), rate) for device, rate in getattr(limits, key))
        for key, _, _ in DEVICE_THROTTLES
        if getattr(limits, key)
    }
    return dataclasses.replace(limits, **changes) if changes else limits


def host_for(run_dir: Path | None) -> HostLimits:
    """This host's limit facts, for the cgroup version the spec renders limits for."""
    return read_host(host_facts(run_dir).cgroup_version)


def validate_for_host(limits: Limits, run_dir: Path | None) -> None:
    """``check`` plus ``check_host`` against this host: what create and set call."""
    check(limits)
    if limits == Limits():
        return
    check_host(limits, host_for(run_dir))
