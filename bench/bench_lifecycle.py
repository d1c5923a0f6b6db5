"""Time richc's busybox lifecycle against the raw LXC tools, in the same run.

    .venv/bin/python bench/bench_lifecycle.py [--rounds N] [--list-size 100]

Each round creates, starts, execs `true` in, stops and removes one richc container and one
raw LXC container built from the same rootfs and an equivalent config. It also times
`richc --help` against `python -c pass`, and `richc list` with many containers against `lxc-ls`.
An idle container stays for the whole run, as on a host with containers, so that lxcfs keeps
serving between rounds instead of being started by each `start` and stopped by each `rm`.
Within a step, richc and the raw tool take turns at going first (even rounds richc, odd
rounds raw), since the second of two back-to-back runs is measurably faster.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import RICHC, VENV_PYTHON, Report, richc_env, timed, timed_call


def raw_config(richc_config: Path, raw_dir: Path, raw_name: str) -> str:
    """The LXC config richc rendered, pointed at the raw container's own rootfs and logs."""
    text = richc_config.read_text()
    out = []
    for line in text.splitlines():
        if line.startswith("lxc.hook."):
            continue  # richc's poststop callback belongs to richc's containers, not raw ones
        if line.startswith(("lxc.idmap", "lxc.rootfs.options", "lxc.seccomp.profile")):
            # The raw container is a plain privileged copy, as before richc's secure
            # defaults (bench_security.py measures what they cost against --privileged).
            continue
        if line.startswith("lxc.rootfs.path"):
            line = f"lxc.rootfs.path = dir:{raw_dir / 'rootfs'}"
        elif line.startswith(("lxc.console.logfile", "lxc.log.file")):
            key = line.split("=")[0].strip()
            line = f"{key} = {raw_dir / Path(line.split('=')[1].strip()).name}"
        elif line.startswith("lxc.uts.name"):
            line = f"lxc.uts.name = {raw_name}"
        out.append(line)
    return "\n".join(out) + "\n"


def raw_create(image: Path, config_text: str, raw_dir: Path, raw: str) -> None:
    """What `lxc-create` with a copied rootfs amounts to: copy the tree, write a config."""
    raw_dir.mkdir()
    subprocess.run(["cp", "-a", f"{image}/.", str(raw_dir / "rootfs")], check=True)
    tmp = raw_dir / "config.in"
    tmp.write_text(config_text)
    (raw_dir / "config").write_text(raw_config(tmp, raw_dir, raw))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--list-size", type=int, default=100)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="richc-bench-"))
    base.chmod(0o711)  # an unprivileged container's root must walk down to its rootfs
    root = base / "root"
    env = richc_env(root)
    lxcpath = base / "raw"
    lxcpath.mkdir()
    report = Report("busybox lifecycle: richc (lxc runtime) vs raw LXC")
    steps: dict[str, tuple[list[float], list[float]]] = {
        s: ([], []) for s in ("create", "start", "exec -- true", "stop", "rm")
    }
    try:
        # Warm caches (busybox image, page cache) outside the timed rounds.
        subprocess.run([RICHC, "create", "warm"], env=env, check=True, capture_output=True)
        image = root / "var/lib/richc/images/busybox/rootfs"
        template = root / "var/lib/richc/containers/warm"
        subprocess.run([RICHC, "start", "warm"], env=env, check=True, capture_output=True)
        subprocess.run([RICHC, "rm", "--force", "warm"], env=env, check=True, capture_output=True)
        subprocess.run([RICHC, "create", "tmpl"], env=env, check=True, capture_output=True)
        subprocess.run([RICHC, "start", "tmpl"], env=env, check=True, capture_output=True)
        richc_config = root / "var/lib/richc/containers/tmpl/config"
        config_text = richc_config.read_text()
        subprocess.run([RICHC, "rm", "--force", "tmpl"], env=env, check=True, capture_output=True)
        del template
        # A host running containers keeps its lxcfs serving (richc stops the lxcfs it started
        # when the last container is removed). One idle container keeps that steady state, so
        # each round times richc's own work, not an lxcfs daemon start and stop.
        subprocess.run([RICHC, "create", "keeper"], env=env, check=True, capture_output=True)
        for i in range(args.rounds):
            name, raw = f"bench-{i}", f"raw-{i}"
            raw_dir = lxcpath / raw
            lxc = ["-P", str(lxcpath), "-n", raw]

            # Each step runs richc's side and the raw side back to back, and whichever goes
            # second finds liblxc, the kernel's paths and the CPU warm: here `lxc-start -d`
            # took a median 27 ms after a 0.3 s pause and 10-13 ms right after richc's start.
            # The order flips every round, so neither side always gets the warm turn.
            make_raw = functools.partial(raw_create, image, config_text, raw_dir, raw)
            pairs: tuple[tuple[str, list[str], list[str] | Callable[[], None]], ...] = (
                ("create", [RICHC, "create", name], make_raw),
                ("start", [RICHC, "start", name], ["lxc-start", *lxc, "-d"]),
                (
                    "exec -- true",
                    [RICHC, "exec", name, "--", "true"],
                    ["lxc-attach", *lxc, "--", "true"],
                ),
                ("stop", [RICHC, "stop", name], ["lxc-stop", *lxc]),
                ("rm", [RICHC, "rm", name], ["lxc-destroy", *lxc]),
            )
            for step, richc_argv, raw_work in pairs:
                sides = ((0, richc_argv, env), (1, raw_work, None))
                for side, work, work_env in sides if i % 2 == 0 else sides[::-1]:
                    # os.sync() before each timed step: richc fsyncs its state, and an
                    # fsync on ext4 also flushes whatever the step before left dirty (the
                    # raw create's 290 inodes), so without it one side would pay for the
                    # other's writes.
                    os.sync()
                    took = timed_call(work) if callable(work) else timed(work, work_env)
                    steps[step][side].append(took)
        raw_names = {
            "create": "cp -a rootfs + write config",
            "start": "lxc-start -d",
            "exec -- true": "lxc-attach -- true",
            "stop": "lxc-stop",
            "rm": "lxc-destroy",
        }
        for step, (richc_t, raw_t) in steps.items():
            report.add(step, richc_t, raw_names[step], raw_t)

        help_t = [timed([RICHC, "--help"], env) for _ in range(10)]
        pass_t = [timed([VENV_PYTHON, "-c", "pass"]) for _ in range(10)]
        report.add("richc --help", help_t, "python -c pass", pass_t)

        for i in range(args.list_size):
            subprocess.run([RICHC, "create", f"many-{i}"], env=env, check=True, capture_output=True)
            many = lxcpath / f"many-{i}"
            many.mkdir()
            (many / "config").write_text(config_text)
        list_t = [timed([RICHC, "list"], env) for _ in range(10)]
        ls_t = [timed(["lxc-ls", "-P", str(lxcpath)]) for _ in range(10)]
        report.add(f"richc list ({args.list_size})", list_t, f"lxc-ls ({args.list_size})", ls_t)
        report.print()
    finally:
        for entry in (root / "var/lib/richc/containers").glob("*"):
            subprocess.run([RICHC, "rm", "--force", entry.name], env=env, capture_output=True)
        for entry in lxcpath.glob("*"):
            subprocess.run(
                ["lxc-stop", "-k", "-P", str(lxcpath), "-n", entry.name], capture_output=True
            )
            subprocess.run(
                ["lxc-destroy", "-P", str(lxcpath), "-n", entry.name], capture_output=True
            )
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
