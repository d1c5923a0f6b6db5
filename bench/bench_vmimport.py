"""Disk-image import cost: vmimport's mounted_tree plus ``cp -a`` out of it, against doing
it by hand (qemu-img convert, losetup per partition, mount read-only, cp -a, undo), in the
same run, as seconds per GiB of guest data and a ratio.

    .venv/bin/python bench/bench_vmimport.py [--rounds 3] [--mib 256]

The guest: a GPT disk with /boot and a root holding *mib* MiB of incompressible files,
as raw and as qcow2. This host's kernel parses no partition tables, so the by-hand way
binds a loop device to each partition's byte range, as vmimport does here.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import RICHC

import vmimport
from tests.integration.vmimages import MIB, Part, build_disk, busybox_root, sh


def build_guest(work: Path, mib: int) -> tuple[Path, Path, list[Part]]:
    payload = work / "payload"
    payload.mkdir()
    for i in range(mib // 16):
        with open(payload / f"blob{i}", "wb") as f:
            f.write(os.urandom(16 * MIB))
    boot = Part(32, files={"vmlinuz": "kernel\n"})
    root = Part(mib + 64)
    root.files = busybox_root(
        f"UUID={root.uuid} / ext4 defaults 0 1\nUUID={boot.uuid} /boot ext4 defaults 0 2\n"
    )
    raw = build_disk(work / "guest.raw", [boot, root], work)
    # Put the payload in the root: build_disk fills from files, so copy through a mount.
    dev = sh("losetup", "--show", "-f", "--offset", str(33 * MIB), raw).strip()
    mnt = work / "mnt"
    mnt.mkdir()
    try:
        sh("mount", dev, mnt)
        sh("cp", "-a", f"{payload}/.", f"{mnt}/srv/")
        sh("umount", mnt)
    finally:
        sh("losetup", "-d", dev)
    shutil.rmtree(payload)
    qcow2 = work / "guest.qcow2"
    sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2)
    return raw, qcow2, [boot, root]


def by_hand(image: Path, parts: list[Part], work: Path, dest: Path) -> None:
    raw = image
    if image.suffix == ".qcow2":
        raw = work / "hand.raw"
        sh("qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, raw)
    devices, tree = [], work / "hand-tree"
    tree.mkdir()
    try:
        start = MIB
        for part in parts:
            devices.append(
                sh("losetup", "--read-only", "--show", "-f", "--offset", str(start),
                   "--sizelimit", str(part.size_mib * MIB), raw).strip()
            )  # fmt: skip
            start += part.size_mib * MIB
        sh("mount", "-o", "ro,noload", devices[1], tree)
        sh("mount", "-o", "ro,noload", devices[0], tree / "boot")
        sh("cp", "-a", f"{tree}/.", f"{dest}/")
    finally:
        subprocess.run(["umount", "-R", tree], capture_output=True)
        for device in devices:
            sh("losetup", "-d", device)
        tree.rmdir()
        if raw != image:
            raw.unlink()


def with_vmimport(image: Path, work: Path, dest: Path) -> None:
    with vmimport.mounted_tree(image, work / "scratch") as tree:
        sh("cp", "-a", f"{tree.path}/.", f"{dest}/")


def once(work: Path, body: Callable[[Path], None]) -> float:
    dest = work / "dest"
    dest.mkdir()
    sh("sync")
    start = time.perf_counter()
    body(dest)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest)
    return elapsed


def with_richc(image: Path, work: Path, dest: Path) -> None:
    """The whole of `richc create --from disk:IMAGE` (import, fix-ups, state) into a private
    root; the container is removed after the clock stopped (see :func:`once`)."""
    env = dict(os.environ, RICHC_ROOT=str(work / "richc-root"))
    subprocess.run(
        [RICHC, "create", "imported", "--from", f"disk:{image}", "--net", "none"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    (dest / ".richc-created").touch()


def _remove_richc(work: Path) -> None:
    env = dict(os.environ, RICHC_ROOT=str(work / "richc-root"))
    subprocess.run([RICHC, "rm", "--force", "imported"], env=env, capture_output=True)


def medians(rounds: int, work: Path, ways: list[Callable[[Path], None]]) -> list[float]:
    """Every way, each round in another order (the second finds the page cache warm)."""
    times: list[list[float]] = [[] for _ in ways]
    for turn in range(rounds):
        order = list(range(len(ways)))
        order = order[turn % len(order) :] + order[: turn % len(order)]
        for index in order:
            times[index].append(once(work, ways[index]))
            _remove_richc(work)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="richc-bench-vmimport-") as tmp:
        work = Path(tmp)
        raw, qcow2, parts = build_guest(work, args.mib)
        gib = args.mib / 1024
        print(f"\n== disk-image import, {args.mib} MiB of guest data, medians of {args.rounds}")
        print(
            f"{'image':<8}{'vmimport s/GiB':>16}{'richc create':>14}{'by hand s/GiB':>16}"
            f"{'ratio':>8}{'richc ratio':>13}"
        )
        for image in (raw, qcow2):
            ours, richc, hand = medians(
                args.rounds,
                work,
                [
                    functools.partial(with_vmimport, image, work),
                    functools.partial(with_richc, image, work),
                    functools.partial(by_hand, image, parts, work),
                ],
            )
            fmt = image.suffix[1:]
            print(
                f"{fmt:<8}{ours / gib:>16.2f}{richc / gib:>14.2f}{hand / gib:>16.2f}"
                f"{ours / hand:>8.2f}{richc / hand:>13.2f}"
            )
        subprocess.run(
            [RICHC, "lxcfs", "stop"],
            env=dict(os.environ, RICHC_ROOT=str(work / "richc-root")),
            capture_output=True,
        )


if __name__ == "__main__":
    main()
