"""Time `richc stats --format json` for many running containers against reading the same
cgroup files directly in one Python process, in the same run.

    .venv/bin/python bench/bench_stats.py [--containers 50] [--rounds 7]

The raw side reads, for every container, the files richc reads (memory usage, stat and
limit, CPU usage and quota, pids, block IO, /proc/PID/net/dev), found from the init's
/proc/PID/cgroup: once in this process (the floor), and once as a fresh
`python -c` (the floor plus an interpreter start, what any CLI pays).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import RICHC, VENV_PYTHON, Report, richc_env, timed, timed_call

# The raw reader, self-contained so it also runs as `python -c` (hybrid/v1 and v2 hosts).
RAW_READER = r"""
import sys
from pathlib import Path

V1 = ("memory.usage_in_bytes", "memory.stat", "memory.limit_in_bytes", "cpuacct.usage",
      "cpu.cfs_quota_us", "cpu.cfs_period_us", "pids.current", "pids.max",
      "blkio.throttle.io_service_bytes_recursive")
V2 = ("memory.current", "memory.stat", "memory.max", "cpu.stat", "cpu.max", "pids.current",
      "pids.max", "io.stat")

def mounts():
    out = {}
    for line in open("/proc/self/mountinfo"):
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if rest[0] == "cgroup2":
            out.setdefault("", fields[4])
        elif rest[0] == "cgroup":
            for opt in rest[2].split(","):
                out.setdefault(opt, fields[4])
    return out

def read_all(pids, v1=True):
    where = mounts()
    total = 0
    for pid in pids:
        dirs = {}
        for line in open(f"/proc/{pid}/cgroup"):
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in (ctrls.split(",") if ctrls else [""]):
                if c in where:
                    dirs[c] = where[c] + path
        for name in (V1 if v1 else V2):
            base = dirs.get(name.split(".")[0] if v1 else "")
            try:
                total += len(open(f"{base}/{name}").read())
            except OSError:
                pass
        total += len(open(f"/proc/{pid}/net/dev").read())
    return total

if __name__ == "__main__":
    print(read_all([int(p) for p in sys.argv[1:]], v1="memory" in mounts()))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="richc-bench-stats-"))
    env = richc_env(base / "root")
    names = [f"bench-s{i:03d}" for i in range(args.containers)]

    def up(name: str) -> None:
        subprocess.run(
            [RICHC, "create", name, "--no-lxcfs", "--memory", "64M", "--pids", "100", "--start"],
            env=env,
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )

    try:
        print(f"starting {args.containers} busybox containers ...", flush=True)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(up, names))
        listed = json.loads(
            subprocess.run(
                [RICHC, "list", "--format", "json"], env=env, check=True, capture_output=True
            ).stdout
        )
        pids = [str(item["pid"]) for item in listed if item["state"] == "running"]
        assert len(pids) == args.containers, f"only {len(pids)} running"

        namespace: dict[str, object] = {"__name__": "raw_reader"}
        exec(compile(RAW_READER, "raw_reader", "exec"), namespace)
        read_all = namespace["read_all"]
        v1 = "memory" in namespace["mounts"]()  # type: ignore[operator]

        report = Report(f"richc stats with {args.containers} running containers")
        rounds = range(args.rounds)
        stats0 = [RICHC, "stats", "--format", "json", "--interval", "0"]
        raw_inproc = [timed_call(lambda: read_all(pids, v1)) for _ in rounds]  # type: ignore[operator]
        raw_python = [timed([VENV_PYTHON, "-c", RAW_READER, *pids]) for _ in rounds]
        report.add(
            "stats json, one reading",
            [timed(stats0, env=env) for _ in rounds],
            "same files, in-process",
            raw_inproc,
        )
        report.add(
            "stats json, one reading",
            [timed(stats0, env=env) for _ in rounds],
            "same files, python -c",
            raw_python,
        )
        report.add(
            "stats json (CPU %, 0.5 s)",
            [timed([RICHC, "stats", "--format", "json"], env=env) for _ in rounds],
            "same files, python -c",
            raw_python,
        )
        report.add(
            "list json (usage columns)",
            [timed([RICHC, "list", "--format", "json"], env=env) for _ in rounds],
            "same files, python -c",
            raw_python,
        )
        empty = richc_env(base / "empty")
        report.add(
            "stats json, no containers",
            [timed(stats0, env=empty) for _ in rounds],
            "python -c pass",
            [timed([VENV_PYTHON, "-c", "pass"]) for _ in rounds],
        )
        report.print()
        print(
            "\nnote: the 0.5 s row waits --interval between its two readings by design;"
            " --interval 0 gives no CPU percent."
        )
    finally:
        for name in names:
            subprocess.run(
                [RICHC, "rm", "--force", name], env=env, capture_output=True, check=False
            )
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
