"""lxcfs costs: reading /proc/meminfo through lxcfs against the kernel's own file, and
`richc lxcfs remount` for many running containers, against the library call it wraps.

    .venv/bin/python bench/bench_lxcfs.py [--containers 50] [--reads 2000] [--rounds 5]

Everything runs on a private --root whose host config points lxcfs at a private home; the
containers are busybox rich containers (init + one sleeping process each), removed at the
end with the lxcfs richc started for them.

- Read cost: open + read + close of the whole file, median per read, from this process
  (lxcfs answers for the reader's cgroup, so this is the host's view; the FUSE round trip is
  the same one a container pays).
- Remount: `richc lxcfs remount` wall time with N healthy containers (views replaced in
  place, lxcfs not restarted), and once after SIGKILL of lxcfs (restart + N re-attaches);
  the raw tool is `lxcfs_integration.remount_views` called in-process for the same N.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RICHC, Report, richc_env, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lxcfs_integration import compute_views, remount_views


def read_cost_us(path: Path, reads: int) -> float:
    samples = []
    for _ in range(reads):
        start = time.perf_counter()
        with open(path, "rb") as f:
            f.read()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def richc_json(env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run(
        [RICHC, *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    data = json.loads(out.stdout)
    assert isinstance(data, dict)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("lxcfs") is None:
        raise SystemExit("needs root and lxcfs")

    tmp = Path(tempfile.mkdtemp(prefix="richc-bench-lxcfs-"))
    root, home = tmp / "root", tmp / "lxcfs-home"
    (root / "etc/richc").mkdir(parents=True)
    (root / "etc/richc/richc.yaml").write_text(f"lxcfs_home: {home}\n")
    env = richc_env(root)
    names = [f"bench-lxcfs-{i:03d}" for i in range(args.containers)]
    try:
        timed([RICHC, "lxcfs", "start"], env=env)
        kernel = read_cost_us(Path("/proc/meminfo"), args.reads)
        via_lxcfs = read_cost_us(home / "proc/meminfo", args.reads)
        print("\n== /proc/meminfo read cost (median per open+read+close)")
        print(f"kernel procfs   {kernel:8.1f} us")
        print(f"through lxcfs   {via_lxcfs:8.1f} us   ratio {via_lxcfs / kernel:.1f}x")

        start = time.perf_counter()
        for name in names:
            timed([RICHC, "create", name, "--memory", "64M", "--start"], env=env)
        made = time.perf_counter() - start
        print(f"\ncreated and started {len(names)} containers in {made:.1f} s")
        info = [richc_json(env, "inspect", n) for n in names]
        pids = [int(str(i["pid"])) for i in info]
        views = compute_views(home)

        report = Report(f"lxcfs remount, {len(names)} running containers, {len(views)} views each")
        cli = [timed([RICHC, "lxcfs", "remount"], env=env) for _ in range(args.rounds)]
        raw = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            reports = [remount_views(pid, views) for pid in pids]
            raw.append(time.perf_counter() - start)
            assert all(r.ok for r in reports), [r for r in reports if not r.ok][:1]
        report.add("remount (healthy)", cli, "remount_views x N, in-process", raw)

        recover = []
        for _ in range(max(1, args.rounds // 2)):
            status = richc_json(env, "lxcfs", "status", "--format", "json")
            host = status["host"]
            assert isinstance(host, dict)
            os.kill(int(host["pid"]), signal.SIGKILL)
            time.sleep(0.2)
            recover.append(timed([RICHC, "lxcfs", "remount"], env=env))
        report.add("remount after SIGKILL", recover, "remount_views x N, in-process", raw)
        report.print()
        per = statistics.median(cli) / len(names) * 1000
        print(f"per container (healthy): {per:.2f} ms")
        after = richc_json(env, "lxcfs", "status", "--format", "json")
        containers = after["containers"]
        assert isinstance(containers, list)
        print(f"healthy after the runs: {sum(bool(c['healthy']) for c in containers)}/{len(names)}")
    finally:
        for name in names:
            timed([RICHC, "rm", "--force", name], env=env, check=False)
        timed([RICHC, "lxcfs", "stop"], env=env, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
