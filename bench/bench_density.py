"""How many busybox rich containers one host holds, and what each costs, against raw LXC.

    .venv/bin/python bench/bench_density.py [--count 100] [--workers 4] [--skip-raw]

richc's side creates and starts busybox containers in steps (100, 200, 500, up to --count)
and at each step reports: memory per container (the host's MemAvailable drop since before
the first container, / N), the start rate of that step (containers/s, --workers starts at
once), and the median latency of `richc list --format json` and `richc stats --format json`
(--interval 0: one reading). Then all of them go, and the raw side does the same with
`lxc-start -d` on a hand-written LXC config (busybox init, no lxcfs, no hooks) over an
overlay of a copy of the same busybox rootfs, so both sides share their base tree.

Whatever stops a side before --count (a failed create or start) ends that side: the error
and the host counters that usually explain it (pids, inotify instances, ptys, open files,
kernel keys) are printed. Everything is removed at the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from common import RICHC, richc_env

STEPS = (100, 200, 500)
SETTLE_S = 3.0  # after a step's starts: inits finish booting, lxcfs settles


def mem_available() -> int:
    """MemAvailable in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def host_counters() -> dict[str, str]:
    """The counters of the limits a container density usually runs into."""

    def read(path: str) -> str:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            return f"? ({exc.strerror})"

    inotify = 0
    tasks = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            tasks += len(os.listdir(f"/proc/{pid}/task"))
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify":
                    inotify += 1
        except OSError:
            continue
    keys = "?"
    for line in read("/proc/key-users").splitlines():
        parts = line.split()
        if parts and parts[0] == "0:":  # uid 0: keys used/maxkeys, bytes used/maxbytes
            maxkeys = read("/proc/sys/kernel/keys/root_maxkeys")
            keys = f"{parts[3]} keys, {parts[4]} bytes (root_maxkeys {maxkeys})"
    file_nr = read("/proc/sys/fs/file-nr").split()
    pid_max, threads_max = read("/proc/sys/kernel/pid_max"), read("/proc/sys/kernel/threads-max")
    instances = read("/proc/sys/fs/inotify/max_user_instances")
    return {
        "tasks": f"{tasks} (pid_max {pid_max}, threads-max {threads_max})",
        "inotify instances": f"{inotify} (max_user_instances {instances})",
        "ptys": f"{read('/proc/sys/kernel/pty/nr')} (max {read('/proc/sys/kernel/pty/max')})",
        "open files": f"{(file_nr or ['?'])[0]} (file-max {read('/proc/sys/fs/file-max')})",
        "kernel keys (root)": keys,
    }


def cgroup_memory(names: Iterable[str]) -> int:
    """Bytes charged to the containers' own cgroups (liblxc's payload and monitor cgroups,
    v1 memory hierarchy or v2): a cross-check of MemAvailable that other processes on the
    host do not move, though it misses kernel memory outside the cgroups."""
    total = 0
    for name in names:
        for kind in ("payload", "monitor"):
            for path in (
                Path(f"/sys/fs/cgroup/memory/lxc.{kind}.{name}/memory.usage_in_bytes"),
                Path(f"/sys/fs/cgroup/lxc.{kind}.{name}/memory.current"),
            ):
                try:
                    total += int(path.read_text())
                    break
                except (OSError, ValueError):
                    continue
    return total


def rss_of_pidfile(pidfile: Path) -> int:
    try:
        pid = int(pidfile.read_text().strip())
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class StepResult:
    count: int
    mem_per_container_kib: float
    start_rate: float
    cgroup_kib: float = 0.0
    list_ms: float | None = None
    stats_ms: float | None = None


@dataclass
class Side:
    name: str
    results: list[StepResult] = field(default_factory=list)
    stopped_at: int | None = None
    error: str = ""
    counters: dict[str, str] = field(default_factory=dict)


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as exc:  # a failure to report, not a crash
        return subprocess.CompletedProcess(argv, 127, "", f"{type(exc).__name__}: {exc}")


def median_ms(argv: list[str], env: dict[str, str], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        proc = run(argv, env)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return statistics.median(times) * 1000


def grow(
    side: Side,
    steps: Iterable[int],
    workers: int,
    make: Callable[[int], str | None],
    launch: Callable[[int], str | None],
    measure: Callable[[int], tuple[float | None, float | None]],
    names: Callable[[int], list[str]],
    daemons: Callable[[], int] = lambda: 0,
) -> None:
    """Bring *side* up step by step: *make* then *launch* container i (each returns an error
    or None), measure memory and *measure*'s latencies at every step; stop at a failure."""
    baseline = mem_available()
    have = 0
    with ThreadPoolExecutor(workers) as pool:
        for target in steps:
            batch = range(have, target)
            errors = [e for e in pool.map(make, batch) if e]
            if not errors:
                t0 = time.perf_counter()
                errors = [e for e in pool.map(launch, batch) if e]
                took = time.perf_counter() - t0
            if errors:
                side.stopped_at = have
                side.error = errors[0]
                side.counters = host_counters()
                print(f"  {side.name}: stopped between {have} and {target}: {errors[0]}")
                return
            have = target
            time.sleep(SETTLE_S)
            per = (baseline - mem_available()) / have / 1024
            charged = (cgroup_memory(names(have)) + daemons()) / have / 1024
            list_ms, stats_ms = measure(have)
            result = StepResult(have, per, len(batch) / took, charged, list_ms, stats_ms)
            side.results.append(result)
            print(
                f"  {side.name} {have:>4}: {per:8.0f} KiB/container (cgroups {charged:.0f} KiB),"
                f" {result.start_rate:5.1f} starts/s"
                + (f", list {list_ms:.0f} ms, stats {stats_ms:.0f} ms" if list_ms else ""),
                flush=True,
            )


def raw_config(name: str, base_rootfs: Path, cdir: Path) -> str:
    """A hand-written config for the same busybox container: what richc's renders, less
    lxcfs views and hooks; the rootfs an overlay of the shared base, as richc's is."""
    return "\n".join(
        [
            f"lxc.uts.name = {name}",
            f"lxc.rootfs.path = overlay:{base_rootfs}:{cdir / 'delta'}",
            "lxc.init.cmd = /sbin/init",
            "lxc.environment = container=lxc",
            "lxc.signal.halt = SIGUSR2",
            "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed:force",
            "lxc.autodev = 1",
            "lxc.tty.max = 0",
            "lxc.pty.max = 64",
            f"lxc.console.logfile = {cdir / 'console.log'}",
            f"lxc.log.file = {cdir / 'lxc.log'}",
            "lxc.log.level = WARN",
            "lxc.cap.drop = mac_admin mac_override sys_module sys_rawio sys_time",
            "lxc.net.0.type = empty",
            "",
        ]
    )


def print_report(count: int, sides: list[Side]) -> None:
    print(
        f"\n== density: busybox containers, up to {count}; KiB/ct = host MemAvailable drop / N;"
        " cg = the containers' payload+monitor cgroups (+ lxcfs RSS for richc) / N"
    )
    by_side = {s.name: {r.count: r for r in s.results} for s in sides}
    counts = sorted({r.count for s in sides for r in s.results})
    print(
        f"{'N':>5}  {'richc KiB/ct':>12}  {'raw KiB/ct':>10}  {'ratio':>6}  "
        f"{'cg richc':>8}  {'cg raw':>7}  {'ratio':>6}  "
        f"{'richc st/s':>10}  {'raw st/s':>8}  {'list ms':>8}  {'stats ms':>8}"
    )
    for n in counts:
        r = by_side.get("richc", {}).get(n)
        w = by_side.get("raw lxc", {}).get(n)
        nan = float("nan")
        mem_r, mem_w = (
            (r.mem_per_container_kib if r else nan),
            (w.mem_per_container_kib if w else nan),
        )
        cg_r, cg_w = (r.cgroup_kib if r else nan), (w.cgroup_kib if w else nan)
        rate_r, rate_w = (r.start_rate if r else nan), (w.start_rate if w else nan)
        list_ms = (r.list_ms or nan) if r else nan
        stats_ms = (r.stats_ms or nan) if r else nan
        print(
            f"{n:>5}  {mem_r:>12.0f}  {mem_w:>10.0f}  {mem_r / mem_w:>6.2f}  "
            f"{cg_r:>8.0f}  {cg_w:>7.0f}  {cg_r / cg_w if cg_w else nan:>6.2f}  "
            f"{rate_r:>10.1f}  {rate_w:>8.1f}  {list_ms:>8.0f}  {stats_ms:>8.0f}"
        )
    for side in sides:
        if side.stopped_at is not None:
            print(f"\n{side.name} stopped at {side.stopped_at} containers: {side.error}")
            for key, value in side.counters.items():
                print(f"  {key:<20} {value}")
    print("\nhost counters now:")
    for key, value in host_counters().items():
        print(f"  {key:<20} {value}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100, help="containers per side (<= 500)")
    parser.add_argument("--workers", type=int, default=4, help="creates/starts at once")
    parser.add_argument("--skip-raw", action="store_true", help="richc's side only")
    args = parser.parse_args()
    steps = [s for s in STEPS if s < args.count] + [args.count]

    # Ctrl-C and SIGTERM both unwind through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    base = Path(tempfile.mkdtemp(prefix="richc-density-"))
    root = base / "root"
    env = richc_env(root)
    lxcpath = base / "raw"
    lxcpath.mkdir()
    sides: list[Side] = []
    try:
        # Warm: the busybox image, compiled templates; a copy of a populated busybox rootfs
        # (inittab and friends, as richc writes them) is the raw side's shared base.
        for argv in (["create", "tmpl"], ["start", "tmpl"]):
            proc = run([RICHC, *argv], env)
            if proc.returncode:
                raise SystemExit(f"richc {' '.join(argv)}: {proc.stderr}")
        base_rootfs = base / "raw-base"
        subprocess.run(
            ["cp", "-a", f"{root}/var/lib/richc/containers/tmpl/rootfs/.", str(base_rootfs)],
            check=True,
        )
        run([RICHC, "rm", "--force", "tmpl"], env)

        richc_side = Side("richc")
        sides.append(richc_side)

        def make(i: int) -> str | None:
            proc = run([RICHC, "create", f"d{i}", "--from", "busybox"], env)
            return f"richc create d{i}: {proc.stderr.strip()}" if proc.returncode else None

        def launch(i: int) -> str | None:
            proc = run([RICHC, "start", f"d{i}"], env)
            if proc.returncode == 0:
                return None
            log = root / f"var/log/richc/d{i}/lxc.log"
            tail = log.read_text().strip().splitlines()[-3:] if log.exists() else []
            return f"richc start d{i}: {proc.stderr.strip()} | lxc.log: {' / '.join(tail)}"

        def measure(n: int) -> tuple[float | None, float | None]:
            return (
                median_ms([RICHC, "list", "--format", "json"], env),
                median_ms([RICHC, "stats", "--format", "json", "--interval", "0"], env),
            )

        print(f"richc: up to {args.count} busybox containers, {args.workers} at once")
        grow(
            richc_side, steps, args.workers, make, launch, measure,
            names=lambda n: [f"d{i}" for i in range(n)],
            daemons=lambda: rss_of_pidfile(root / "run/richc/lxcfs/lxcfs.pid"),
        )  # fmt: skip
        remove_richc(root, env, args.workers)

        if not args.skip_raw:
            raw_side = Side("raw lxc")
            sides.append(raw_side)

            def raw_make(i: int) -> str | None:
                cdir = lxcpath / f"r{i}"
                (cdir / "delta").mkdir(parents=True)
                (cdir / "config").write_text(raw_config(f"r{i}", base_rootfs, cdir))
                return None

            def raw_launch(i: int) -> str | None:
                proc = run(["lxc-start", "-P", str(lxcpath), "-n", f"r{i}", "-d"])
                if proc.returncode == 0:
                    return None
                log = lxcpath / f"r{i}/lxc.log"
                tail = log.read_text().strip().splitlines()[-3:] if log.exists() else []
                return f"lxc-start r{i}: {proc.stderr.strip()} | lxc.log: {' / '.join(tail)}"

            print(f"raw lxc: up to {args.count} busybox containers, {args.workers} at once")
            grow(
                raw_side, steps, args.workers, raw_make, raw_launch, lambda n: (None, None),
                names=lambda n: [f"r{i}" for i in range(n)],
            )  # fmt: skip
        print_report(args.count, sides)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
    finally:
        remove_richc(root, env, args.workers)
        remove_raw(lxcpath, args.workers)
        run([RICHC, "lxcfs", "stop"], env)
        shutil.rmtree(base, ignore_errors=True)


def remove_richc(root: Path, env: dict[str, str], workers: int) -> None:
    containers = root / "var/lib/richc/containers"
    names = [p.name for p in containers.iterdir()] if containers.is_dir() else []
    if not names:
        return
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        failed = [
            p
            for p in pool.map(lambda n: run([RICHC, "rm", "--force", n], env), names)
            if p.returncode
        ]
    print(
        f"  removed {len(names) - len(failed)} richc containers in {time.perf_counter() - t0:.1f}s"
    )
    for proc in failed[:3]:
        print(f"  rm failed: {proc.stderr.strip()}", file=sys.stderr)


def remove_raw(lxcpath: Path, workers: int) -> None:
    names = [p.name for p in lxcpath.iterdir()] if lxcpath.is_dir() else []

    def remove(name: str) -> None:
        run(["lxc-stop", "-k", "-P", str(lxcpath), "-n", name])
        run(["lxc-destroy", "-P", str(lxcpath), "-n", name])

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(remove, names))


if __name__ == "__main__":
    main()
