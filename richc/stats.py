"""Resource usage of running containers, read from their cgroup files on the host.

Never through lxcfs (a read there costs ten times a procfs read) and never by entering
the container: the init's pid leads to its cgroups (richc.cgroups) and to its network
namespace's /proc/PID/net/dev (unless that namespace is the host's). CPU percent needs
two readings: :func:`collect` takes them for all containers at once, *interval* seconds
apart, so asking for 50 containers costs one interval, not 50. 100 % is one CPU busy, as
in ``top`` and ``docker stats``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from richc import cgroups
from richc.context import Context
from richc.errors import RichcError
from richc.procs import live_pid
from richc.state import State
from richc.store import ContainerDir

# v1 reports "no limit" as the largest page-aligned number; anything this large is none.
_UNLIMITED = 1 << 62


@dataclass(frozen=True)
class Reading:
    """Counters of one container at one moment."""

    at: float  # time.monotonic()
    cpu_ns: int | None
    memory_used: int | None
    memory_limit: int | None
    cpu_quota: float | None  # CPUs allowed by the CFS quota, None if unlimited
    pids: int | None
    pids_limit: int | None
    read_bytes: int | None
    write_bytes: int | None
    rx_bytes: int | None
    tx_bytes: int | None


@functools.cache
def _mounts() -> cgroups.CgroupMounts:
    return cgroups.host_mounts()


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if text in ("max", ""):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _limit(text: str | None) -> int | None:
    value = _int(text)
    return None if value is None or value >= _UNLIMITED else value


def _keyed(text: str | None) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat) as a mapping."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def _io_v1(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "Read":
            read += int(parts[2])
        elif len(parts) == 3 and parts[1] == "Write":
            write += int(parts[2])
    return read, write


def _io_v2(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    read = write = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


def parse_net_dev(text: str) -> tuple[int | None, int | None]:
    """Received and sent bytes over every interface but loopback (/proc/net/dev).

    None when loopback is the only one (``--net none``): there is no traffic to know of.
    """
    rx = tx = 0
    seen = False
    for line in text.splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        seen = True
        rx += int(fields[0])
        tx += int(fields[8])
    return (rx, tx) if seen else (None, None)


def shares_host_network(pid: int, proc: Path = Path("/proc")) -> bool:
    """Whether *pid* lives in the host's network namespace (``--net host``): richc's own or
    that of PID 1. Its net/dev then counts the whole host's traffic, not the container's."""
    try:
        theirs = os.stat(proc / str(pid) / "ns/net")
    except OSError:
        return False
    for other in ("self", "1"):
        with contextlib.suppress(OSError):
            ours = os.stat(proc / other / "ns/net")
            if (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino):
                return True
    return False


def read(group: cgroups.ContainerCgroup, pid: int, proc: Path = Path("/proc")) -> Reading:
    """One reading of a container's counters; a file the kernel lacks gives None."""
    at = time.monotonic()
    get = group.read_optional
    if group.version == 2:
        cpu_ns = _keyed(get("cpu.stat")).get("usage_usec")
        cpu_ns = None if cpu_ns is None else cpu_ns * 1000
        current = _int(get("memory.current"))
        inactive = _keyed(get("memory.stat")).get("inactive_file", 0)
        memory_limit = _limit(get("memory.max"))
        quota_text = (get("cpu.max") or "max").split()
        cpu_quota = (
            None
            if quota_text[0] == "max" or len(quota_text) < 2
            else int(quota_text[0]) / int(quota_text[1])
        )
        read_bytes, write_bytes = _io_v2(get("io.stat"))
    else:
        cpu_ns = _int(get("cpuacct.usage"))
        current = _int(get("memory.usage_in_bytes"))
        inactive = _keyed(get("memory.stat")).get("total_inactive_file", 0)
        memory_limit = _limit(get("memory.limit_in_bytes"))
        quota = _int(get("cpu.cfs_quota_us"))
        period = _int(get("cpu.cfs_period_us"))
        cpu_quota = quota / period if quota and quota > 0 and period else None
        read_bytes, write_bytes = _io_v1(get("blkio.throttle.io_service_bytes_recursive"))
    # Page cache the kernel can drop at once is not "used", as docker stats counts it.
    used = None if current is None else max(current - inactive, 0)
    rx = tx = None
    if not shares_host_network(pid, proc):
        with contextlib.suppress(OSError):
            rx, tx = parse_net_dev((proc / str(pid) / "net/dev").read_text())
    return Reading(
        at=at,
        cpu_ns=cpu_ns,
        memory_used=used,
        memory_limit=memory_limit,
        cpu_quota=cpu_quota,
        pids=_int(get("pids.current")),
        pids_limit=_int(get("pids.max")),
        read_bytes=read_bytes,
        write_bytes=write_bytes,
        rx_bytes=rx,
        tx_bytes=tx,
    )


def cpu_percent(first: Reading, second: Reading) -> float | None:
    if first.cpu_ns is None or second.cpu_ns is None or second.at <= first.at:
        return None
    return round((second.cpu_ns - first.cpu_ns) / 1e9 / (second.at - first.at) * 100, 1)


def to_json(
    name: str, state: str, pid: int | None, now: Reading | None, percent: float | None
) -> dict[str, Any]:
    """One container's entry in ``richc stats --format json`` (docs/cli-json.md)."""
    if now is None:
        return {
            "name": name,
            "state": state,
            "pid": pid,
            "memory": {"used_bytes": None, "limit_bytes": None, "percent": None},
            "cpu": {"seconds": None, "percent": None, "limit_cpus": None},
            "pids": {"current": None, "limit": None},
            "io": {"read_bytes": None, "write_bytes": None},
            "net": {"rx_bytes": None, "tx_bytes": None},
        }
    memory_percent = None
    if now.memory_used is not None and now.memory_limit:
        memory_percent = round(now.memory_used * 100 / now.memory_limit, 1)
    return {
        "name": name,
        "state": state,
        "pid": pid,
        "memory": {
            "used_bytes": now.memory_used,
            "limit_bytes": now.memory_limit,
            "percent": memory_percent,
        },
        "cpu": {
            "seconds": None if now.cpu_ns is None else round(now.cpu_ns / 1e9, 3),
            "percent": percent,
            "limit_cpus": now.cpu_quota,
        },
        "pids": {"current": now.pids, "limit": now.pids_limit},
        "io": {"read_bytes": now.read_bytes, "write_bytes": now.write_bytes},
        "net": {"rx_bytes": now.rx_bytes, "tx_bytes": now.tx_bytes},
    }


@dataclass
class Target:
    """A container being watched: where its cgroup is, and its last reading."""

    name: str
    pid: int | None
    group: cgroups.ContainerCgroup | None
    last: Reading | None = None


def cgroup_of(ctx: Context, cdir: ContainerDir, state: State, pid: int) -> cgroups.ContainerCgroup:
    """The cgroup of a running container: the scope its runtime made, recorded at start.

    The init may have moved below it (systemd's init.scope, or anything an init does with
    its own cgroup tree), so the scope, not the init's cgroup, is the container's.
    """
    from richc.hostfacts import host_facts

    scope = state.init_run.cgroup_scope if state.init_run is not None else None
    if scope is None:
        # Started by a richc that did not record it; importing the runtime costs ~15 ms.
        from richc.runtime import get_runtime

        scope = get_runtime(state.runtime or "lxc").cgroup_scope(cdir.name)
    version = host_facts(ctx.paths.run).cgroup_version
    return cgroups.locate(pid, version=version, scope=scope, mounts=_mounts())


def targets(ctx: Context, names: Sequence[str]) -> list[Target]:
    """The named containers (all running ones when none are named), located once."""
    store = ctx.store
    cdirs = [store.get(n) for n in names] if names else [store.container(n) for n in store.names()]
    out: list[Target] = []
    for cdir in cdirs:
        state = cdir.load_state()
        pid = live_pid(state.init_run)
        if pid is None:
            if names:
                out.append(Target(cdir.name, None, None))
            continue
        try:
            group = cgroup_of(ctx, cdir, state, pid)
        except RichcError:
            group = None  # it stopped between the two looks
        out.append(Target(cdir.name, pid if group else None, group))
    return out


def sample(items: Sequence[Target]) -> list[dict[str, Any]]:
    """Read every target once; CPU percent against its previous reading, if any."""
    out: list[dict[str, Any]] = []
    for item in items:
        now: Reading | None = None
        if item.group is not None and item.pid is not None:
            try:
                now = read(item.group, item.pid)
            except OSError:
                now = None
        percent = cpu_percent(item.last, now) if item.last and now else None
        state = "running" if now is not None else "stopped"
        out.append(to_json(item.name, state, item.pid if now else None, now, percent))
        item.last = now
        if now is None:
            item.group = None
    return out


def collect(ctx: Context, names: Sequence[str], interval: float) -> list[dict[str, Any]]:
    """Stats of the containers, CPU percent over *interval* seconds (None if 0)."""
    items = targets(ctx, names)
    first = sample(items)
    if interval <= 0 or not any(i.group for i in items):
        return first
    time.sleep(interval)
    return sample(items)


def usage(ctx: Context, cdir: ContainerDir, state: State, pid: int | None) -> dict[str, Any]:
    """The cheap usage figures `richc list` and `inspect` show: memory and CPU time."""
    empty: dict[str, Any] = {"memory_bytes": None, "cpu_seconds": None}
    if pid is None:
        return empty
    try:
        now = read(cgroup_of(ctx, cdir, state, pid), pid)
    except (RichcError, OSError):
        return empty
    return {
        "memory_bytes": now.memory_used,
        "cpu_seconds": None if now.cpu_ns is None else round(now.cpu_ns / 1e9, 3),
    }
