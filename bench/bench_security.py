"""What richc's secure defaults cost: create, start and exec of an unprivileged busybox
container (the default) against the same with ``--privileged``, in the same run.

    .venv/bin/python bench/bench_security.py [--rounds N] [--runtime lxc|runc] [--disk]

Each round creates, starts, execs `true` in, stops and removes one default container and
one ``--privileged`` container; within a step the two take turns at going first (the second
of two back-to-back runs finds everything warm). The report's "raw" column is the
``--privileged`` container, so its ratio is what the default costs relative to it. With
``--disk 64M`` each container gets a copied rootfs under a quota (an idmapped mount of its
own tree, or a shift where the filesystem takes none) instead of the shared overlay image.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import RICHC, Report, richc_env, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runtime", choices=("lxc", "runc"), default="lxc")
    parser.add_argument("--disk", default=None, help="e.g. 64M: a copied rootfs under a quota")
    args = parser.parse_args()

    # 0711: an unprivileged container's root must walk down to its rootfs.
    base = Path(tempfile.mkdtemp(prefix="richc-bench-"))
    base.chmod(0o711)
    root = base / "root"
    env = richc_env(root)
    extra = ["--net", "none", "--runtime", args.runtime]
    if args.disk:
        extra += ["--disk", args.disk]
    shape = f"{args.runtime} runtime, " + (f"--disk {args.disk}" if args.disk else "shared image")
    report = Report(f"busybox, {shape}: unprivileged (default) vs --privileged", "default", "priv")
    steps: dict[str, tuple[list[float], list[float]]] = {
        s: ([], []) for s in ("create", "start", "exec -- true", "stop", "rm")
    }
    try:
        # Warm caches (busybox image, lxcfs) outside the timed rounds; one idle container
        # keeps lxcfs serving between rounds, as on a host with containers.
        for argv in (["create", "warm", *extra], ["start", "warm"], ["rm", "-f", "warm"]):
            subprocess.run([RICHC, *argv], env=env, check=True, capture_output=True)
        subprocess.run(
            [RICHC, "create", "keeper", *extra], env=env, check=True, capture_output=True
        )
        for i in range(args.rounds):
            default, privileged = f"u-{i}", f"p-{i}"
            true = ["--", "true"]
            make_priv = ["create", privileged, "--privileged", *extra]
            pairs = (
                ("create", ["create", default, *extra], make_priv),
                ("start", ["start", default], ["start", privileged]),
                ("exec -- true", ["exec", default, *true], ["exec", privileged, *true]),
                ("stop", ["stop", default], ["stop", privileged]),
                ("rm", ["rm", default], ["rm", privileged]),
            )  # fmt: skip
            for step, unpriv_argv, priv_argv in pairs:
                sides = ((0, unpriv_argv), (1, priv_argv))
                for side, argv in sides if i % 2 == 0 else sides[::-1]:
                    os.sync()  # each side pays for its own writes (see bench_lifecycle.py)
                    steps[step][side].append(timed([RICHC, *argv], env))
        for step, (unpriv, priv) in steps.items():
            report.add(step, unpriv, "--privileged", priv)
        report.print()
    finally:
        for entry in (root / "var/lib/richc/containers").glob("*"):
            subprocess.run([RICHC, "rm", "--force", entry.name], env=env, capture_output=True)
        subprocess.run([RICHC, "network", "rm", "--force", "richc0"], env=env, capture_output=True)
        subprocess.run([RICHC, "lxcfs", "stop"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
