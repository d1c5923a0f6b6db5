"""What hooks cost on `richc start` (and `stop`), against raw floors measured in the same run.

    .venv/bin/python bench/bench_hooks.py [--rounds N]

Rows:
- start with an empty hooks.d vs `lxc-start -d` of the same container (its own config);
- start with 10 no-op prestart hooks, and with 10 no-op poststart hooks (which adds the
  wait for busybox init's readiness), vs the start with an empty hooks.d: the difference
  is the hooks' cost; a raw floor of 10 fork+execs of the same no-op script is printed too;
- stop: `lxc-stop` of richc's container, whose monitor runs richc's poststop callback
  (Python + the built-in hook), vs `lxc-stop` of a copy of its config without the
  callback; and `richc stop` (CLI + prestop + callback) against the same floor;
- hook discovery for all four stages in-process, empty hooks.d vs 10 hooks per stage.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import RICHC, Report, median_ms, richc_env, timed

NOOP = "#!/bin/sh\nexit 0\n"


def install_noops(hooks_d: Path, stage: str, count: int) -> None:
    directory = hooks_d / stage
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = directory / f"{i:02d}-noop"
        path.write_text(NOOP)
        path.chmod(0o755)


def start_stop_rounds(
    name: str, env: dict[str, str], rounds: int
) -> tuple[list[float], list[float]]:
    starts, stops = [], []
    for _ in range(rounds):
        starts.append(timed([RICHC, "start", name], env))
        stops.append(timed([RICHC, "stop", name], env))
    return starts, stops


def discovery_seconds(root: Path, rounds: int = 200) -> list[float]:
    from richc import config as cfg
    from richc.context import Context
    from richc.hookrun import stages
    from richc.hookrun.model import Stage
    from richc.paths import HostPaths
    from richc.state import State

    ctx = Context(paths=HostPaths.from_root(root))
    config = cfg.from_dict({"name": "bench"})
    state = State(name="bench", init="busybox")
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        for stage in Stage:
            stages.hooks_for(ctx, config, state, stage)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="richc-bench-hooks-"))
    root = base / "root"
    env = richc_env(root)
    hooks_d = root / "etc/richc/hooks.d"
    report = Report("hooks on start/stop (busybox, lxc runtime)")
    name = "hb"
    try:
        subprocess.run([RICHC, "create", name], env=env, check=True, capture_output=True)
        start_stop_rounds(name, env, 1)  # warm: lxcfs, page cache, rendered config

        empty_start: list[float] = []
        empty_stop: list[float] = []
        pre_start: list[float] = []
        post_start: list[float] = []
        raw_start: list[float] = []
        floor: list[float] = []
        lxcpath = str(root / "var/lib/richc/containers")
        noop = base / "noop"
        noop.write_text(NOOP)
        noop.chmod(0o755)

        def empty() -> None:
            starts, stops = start_stop_rounds(name, env, 1)
            empty_start.extend(starts)
            empty_stop.extend(stops)

        def raw() -> None:
            raw_start.append(timed(["lxc-start", "-P", lxcpath, "-n", name, "-d"]))
            subprocess.run([RICHC, "stop", name], env=env, check=True, capture_output=True)

        def with_hooks(stage: str, into: list[float]) -> None:
            install_noops(hooks_d, stage, 10)
            into.extend(start_stop_rounds(name, env, 1)[0])
            shutil.rmtree(hooks_d / stage)

        def fork_exec() -> None:
            started = time.perf_counter()
            for _ in range(10):
                subprocess.run([str(noop)], check=True)
            floor.append(time.perf_counter() - started)

        scenarios = [
            empty,
            raw,
            lambda: with_hooks("prestart", pre_start),
            lambda: with_hooks("poststart", post_start),
            fork_exec,
        ]
        for i in range(args.rounds):
            # Scenarios rotate within each round, so a busy host or an order effect skews
            # them all alike.
            for scenario in scenarios[i % len(scenarios) :] + scenarios[: i % len(scenarios)]:
                scenario()
        report.add("start, empty hooks.d", empty_start, "lxc-start -d (same config)", raw_start)
        report.add("start, 10 no-op prestart", pre_start, "start, empty hooks.d", empty_start)
        report.add("start, 10 no-op poststart", post_start, "start, empty hooks.d", empty_start)
        report.add("(floor) 10 x fork+exec no-op", floor, "start, empty hooks.d", empty_start)

        # The raw stop: the same container (rootfs, config) minus richc's poststop callback,
        # under another lxcpath.
        raw_dir = base / "lxc" / name
        raw_dir.mkdir(parents=True)
        config = (root / "var/lib/richc/containers" / name / "config").read_text()
        lines = [line for line in config.splitlines() if not line.startswith("lxc.hook.")]
        (raw_dir / "config").write_text("\n".join(lines) + "\n")
        raw_stop = []
        for _ in range(args.rounds):
            subprocess.run(["lxc-start", "-P", str(raw_dir.parent), "-n", name, "-d"], check=True)
            raw_stop.append(timed(["lxc-stop", "-P", str(raw_dir.parent), "-n", name]))
        with_callback = []
        for _ in range(args.rounds):
            subprocess.run(["lxc-start", "-P", lxcpath, "-n", name, "-d"], check=True)
            with_callback.append(timed(["lxc-stop", "-P", lxcpath, "-n", name]))
        report.add("lxc-stop + richc callback", with_callback, "lxc-stop, no callback", raw_stop)
        report.add("richc stop", empty_stop, "lxc-stop, no callback", raw_stop)

        empty_d = discovery_seconds(root)
        for stage in ("prestart", "poststart", "prestop", "poststop"):
            install_noops(hooks_d, stage, 10)
        full_d = discovery_seconds(root)
        report.add("discovery, 10 hooks/stage", full_d, "discovery, empty hooks.d", empty_d)
        report.print()
        print(f"(discovery, empty hooks.d: {median_ms(empty_d):.3f} ms for all four stages)")
    finally:
        subprocess.run(["lxc-stop", "-k", "-P", str(base / "lxc"), "-n", name], capture_output=True)
        subprocess.run([RICHC, "rm", "--force", name], env=env, capture_output=True)
        subprocess.run([RICHC, "lxcfs", "stop"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
