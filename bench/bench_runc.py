"""Time richc's busybox lifecycle on the runc runtime against raw runc (and crun), in one run.

    .venv/bin/python bench/bench_runc.py [--rounds N]

Each round creates, starts, execs `true` in, stops and removes one richc container on the
runc runtime, one on the lxc runtime (for reference), and one raw runc container whose
bundle is the config.json richc rendered, pointed at its own rootfs copy (without richc's
console pty, which raw runc has no keeper for, and without the lxcfs views). crun is timed
the same way where it runs; crun 1.8 refuses hybrid cgroup hosts, and the output says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from common import RICHC, Report, richc_env, timed, timed_call

STEPS = ("create", "start", "exec -- true", "stop", "rm")


def raw_bundle(config: dict[str, object], image: Path, bundle: Path, cgroup: str) -> None:
    """What a hand-made bundle amounts to: copy the tree, write config.json."""
    bundle.mkdir()
    subprocess.run(["cp", "-a", f"{image}/.", str(bundle / "rootfs")], check=True)
    data = json.loads(json.dumps(config))
    data["root"]["path"] = str(bundle / "rootfs")
    # No console pty (raw runc has no keeper) and no lxcfs views (richc's lxcfs for its
    # root may be gone between containers).
    data["mounts"] = [
        m
        for m in data["mounts"]
        if m["destination"] != "/dev/console" and "/lxcfs/" not in m.get("source", "")
    ]
    data["linux"]["cgroupsPath"] = cgroup
    (bundle / "config.json").write_text(json.dumps(data))


def timed_detached(argv: list[str]) -> float:
    """Like common.timed, with every stream on /dev/null: a detached init inherits them,
    and a pipe it holds would never reach end of file."""
    start = time.perf_counter()
    subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


def raw_stop(tool: list[str], cid: str) -> None:
    """`kill` with busybox's poweroff signal, wait until the init is gone, `delete`."""
    subprocess.run([*tool, "kill", cid, "USR2"], check=True, capture_output=True)
    while True:
        proc = subprocess.run([*tool, "state", cid], capture_output=True, text=True)
        if proc.returncode != 0 or json.loads(proc.stdout)["status"] == "stopped":
            break
        time.sleep(0.005)
    subprocess.run([*tool, "delete", "--force", cid], check=True, capture_output=True)


def raw_steps(
    tool: list[str], config: dict[str, object], image: Path, base: Path, cid: str
) -> dict[str, float]:
    bundle = base / cid
    out = {"create": timed_call(lambda: raw_bundle(config, image, bundle, f"/{cid}"))}
    out["start"] = timed_detached([*tool, "run", "-d", "--bundle", str(bundle), cid])
    out["exec -- true"] = timed([*tool, "exec", cid, "/bin/true"])
    out["stop"] = timed_call(lambda: raw_stop(tool, cid))
    out["rm"] = timed_call(lambda: shutil.rmtree(bundle))
    return out


def richc_steps(env: dict[str, str], name: str, runtime: str) -> dict[str, float]:
    return {
        "create": timed([RICHC, "create", name, "--runtime", runtime], env),
        "start": timed([RICHC, "start", name], env),
        "exec -- true": timed([RICHC, "exec", name, "--", "true"], env),
        "stop": timed([RICHC, "stop", name], env),
        "rm": timed([RICHC, "rm", name], env),
    }


def crun_works(crun: str, config: dict[str, object], image: Path, base: Path) -> str | None:
    """None if crun can run the bundle here, else its reason (first error line)."""
    cid = "crun-probe"
    raw_bundle(config, image, base / cid, f"/{cid}")
    tool = [crun, "--root", str(base / "crun-state")]
    log = base / "crun-probe.log"
    with open(log, "w") as handle:
        proc = subprocess.run(
            [*tool, "run", "-d", "--bundle", str(base / cid), cid],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )
    subprocess.run([*tool, "delete", "--force", cid], capture_output=True)
    shutil.rmtree(base / cid, ignore_errors=True)
    if proc.returncode == 0:
        return None
    lines = log.read_text().strip().splitlines()
    return (lines or [f"exit status {proc.returncode}"])[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="richc-bench-runc-"))
    root = base / "root"
    env = richc_env(root)
    raw_base = base / "raw"
    raw_base.mkdir()
    runc = ["runc", "--root", str(base / "runc-state")]
    crun_path = shutil.which("crun")
    samples: dict[str, dict[str, list[float]]] = {
        who: {s: [] for s in STEPS} for who in ("runc-rt", "lxc-rt", "runc", "crun")
    }
    try:
        # Warm caches and take the config.json richc renders for a busybox container.
        subprocess.run(
            [RICHC, "create", "tmpl", "--runtime", "runc", "--start"],
            env=env,
            check=True,
            capture_output=True,
        )
        config = json.loads((root / "var/lib/richc/containers/tmpl/config.json").read_text())
        subprocess.run([RICHC, "rm", "--force", "tmpl"], env=env, check=True, capture_output=True)
        image = root / "var/lib/richc/images/busybox/rootfs"
        crun_reason = "not installed" if crun_path is None else None
        if crun_path is not None:
            crun_reason = crun_works(crun_path, config, image, raw_base)
        crun = [crun_path or "crun", "--root", str(base / "crun-state")]

        for i in range(args.rounds):
            runs: list[tuple[str, Callable[[], dict[str, float]]]] = [
                ("runc-rt", partial(richc_steps, env, f"bench-runc-{i}", "runc")),
                ("lxc-rt", partial(richc_steps, env, f"bench-lxc-{i}", "lxc")),
                ("runc", partial(raw_steps, runc, config, image, raw_base, f"raw-runc-{i}")),
            ]
            if crun_reason is None:
                runs.append(
                    ("crun", partial(raw_steps, crun, config, image, raw_base, f"crun-{i}"))
                )
            for who, run in runs:
                for step, seconds in run().items():
                    samples[who][step].append(seconds)

        raw_names = {
            "create": "cp -a rootfs + config.json",
            "start": "runc run -d",
            "exec -- true": "runc exec -- true",
            "stop": "runc kill USR2 + wait + delete",
            "rm": "rm -r bundle",
        }
        report = Report("busybox lifecycle: richc (runc runtime) vs raw runc")
        for step in STEPS:
            report.add(step, samples["runc-rt"][step], raw_names[step], samples["runc"][step])
        report.print()

        versus = Report("busybox lifecycle: richc runc runtime vs richc lxc runtime")
        for step in STEPS:
            versus.add(
                step, samples["runc-rt"][step], "richc (lxc runtime)", samples["lxc-rt"][step]
            )
        versus.print()

        if crun_reason is None:
            crun_report = Report("busybox lifecycle: raw crun vs raw runc (same bundle)")
            for step in STEPS:
                crun_report.add(step, samples["crun"][step], raw_names[step], samples["runc"][step])
            crun_report.print()
        else:
            print(f"\ncrun: not timed on this host: {crun_reason}")
            print("(crun 1.8 refuses hybrid cgroup hosts; it runs on a pure cgroup v2 host.)")
    finally:
        for entry in (root / "var/lib/richc/containers").glob("*"):
            subprocess.run([RICHC, "rm", "--force", entry.name], env=env, capture_output=True)
        subprocess.run([RICHC, "lxcfs", "stop"], env=env, capture_output=True)
        for tool in (runc, crun if crun_path else None):
            if tool is None:
                continue
            listed = subprocess.run([*tool, "list", "-q"], capture_output=True, text=True)
            for cid in listed.stdout.split():
                subprocess.run([*tool, "delete", "--force", cid], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
