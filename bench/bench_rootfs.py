"""Time `richc create --from debian:bookworm` with a warm image cache, and the disk each
extra container takes, against a plain `cp -a` of the same tree, in the same run.

    .venv/bin/python bench/bench_rootfs.py [--rounds N] [--images DIR] [--suite bookworm]

--images points at an images cache to reuse (e.g. a test session's RICHC_TEST_IMAGE_CACHE);
without it the first create debootstraps (about a minute) and that time is reported once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import RICHC, Report, richc_env, timed


def disk_used(path: Path) -> int:
    """Bytes the tree at *path* takes on disk (`du`, one count per hard-linked inode)."""
    out = subprocess.run(
        ["du", "-s", "--block-size=1", "-x", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--images", type=Path, help="an images cache directory to reuse")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="richc-bench-rootfs-"))
    root = base / "root"
    (root / "var/lib/richc").mkdir(parents=True)
    if args.images:
        args.images.mkdir(parents=True, exist_ok=True)
        (root / "var/lib/richc/images").symlink_to(args.images.resolve())
    env = richc_env(root)
    source = f"debian:{args.suite}"
    names: list[str] = []
    try:
        started = time.perf_counter()
        subprocess.run([RICHC, "create", "warm", "--from", source], env=env, check=True)
        names.append("warm")
        print(f"first create (cache {'reused' if args.images else 'cold'}): "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        image = root / f"var/lib/richc/images/debian-{args.suite}-systemd/rootfs"
        image_bytes = disk_used(image)

        creates, copies, own_bytes = [], [], []
        containers = root / "var/lib/richc/containers"
        for i in range(args.rounds):
            name = f"bench-{i}"
            creates.append(timed([RICHC, "create", name, "--from", source], env=env))
            names.append(name)
            # What the container adds on disk: its directory without the shared image,
            # which is mounted at rootfs/ (du -x does not cross into the mount).
            own_bytes.append(disk_used(containers / name))
            target = base / f"copy-{i}"
            copies.append(timed(["cp", "-a", f"{image}/.", str(target)]))
            shutil.rmtree(target)

        report = Report(f"create --from {source}, warm cache: richc vs cp -a of the image")
        report.add("create (shared image)", creates, "cp -a IMAGE", copies)
        report.print()
        print(f"\n== disk per extra container (median of {args.rounds})")
        print(
            f"richc create (overlay upper + state): {statistics.median(own_bytes) / 2**20:8.2f} MiB"
        )
        print(f"cp -a of the image:                   {image_bytes / 2**20:8.2f} MiB")
    finally:
        for name in names:
            subprocess.run([RICHC, "rm", "--force", name], env=env, check=False)
        if (root / "var/lib/richc/images").is_symlink():
            os.unlink(root / "var/lib/richc/images")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
