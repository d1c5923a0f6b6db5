"""Disk quota costs: write throughput inside limited vs unlimited containers, and create
time per backend, against the raw tools in the same run.

    .venv/bin/python bench/bench_quota.py [--rounds N] [--mib 200]

Backends measured: ``loop`` on the host filesystem and ``btrfs`` on a btrfs image mounted
as the store's containers directory (with an unlimited container on that same btrfs, so
the comparison is qgroups on vs off, not btrfs vs ext4). ``project`` needs a kernel with
quota formats; this host has none (see tests/integration/test_quota_vm.py).

Throughput: ``dd if=/dev/zero bs=1M conv=fsync`` inside the container through
``richc exec``, with the exec overhead (median of ``richc exec -- true``) subtracted; the raw
tool is the same dd run on the host into the same filesystem.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RICHC, Report, richc_env, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quota import loopdev
from quota.mounts import MNT_DETACH, is_mount_point, mount, umount

MiB = 1 << 20


def richc(env: dict[str, str], *args: str) -> float:
    return timed([RICHC, *args], env=env)


def dd_seconds(argv_prefix: list[str], target: str, mib: int, env: dict[str, str] | None) -> float:
    start = time.perf_counter()
    subprocess.run(
        [*argv_prefix, "dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fsync"],
        env=env,
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return time.perf_counter() - start


def throughput(
    rounds: int,
    mib: int,
    run: list[str],
    target: str,
    env: dict[str, str] | None,
    overhead: float = 0.0,
) -> float:
    """Median MiB/s over *rounds* writes of *mib* MiB."""
    rates = []
    for _ in range(rounds):
        seconds = dd_seconds(run, target, mib, env) - overhead
        rates.append(mib / max(seconds, 1e-6))
        subprocess.run([*run, "rm", "-f", target], env=env, check=True, capture_output=True)
    return statistics.median(rates)


def exec_overhead(env: dict[str, str], name: str, rounds: int) -> float:
    return statistics.median(richc(env, "exec", name, "--", "true") for _ in range(rounds))


def mount_btrfs(base: Path, target: Path, size: int) -> Path:
    image = base / "store-btrfs.img"
    with open(image, "wb") as f:
        f.truncate(size)
    subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True)
    target.mkdir(parents=True)
    with loopdev.attached(image) as device:
        mount(device, target, "btrfs")
    return image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=200, help="MiB written per round")
    args = parser.parse_args()
    limit = f"{args.mib * 3}M"

    base = Path(tempfile.mkdtemp(prefix="richc-bench-quota-"))
    ext_env = richc_env(base / "ext")
    btrfs_env = richc_env(base / "btrfs")
    btrfs_store = base / "btrfs/var/lib/richc/containers"
    image = mount_btrfs(base, btrfs_store, 4 * args.mib * MiB + 1024 * MiB)
    created: list[tuple[dict[str, str], str]] = []
    try:
        # --- create time per backend ---
        create = Report("create time per disk backend (raw = richc create without --disk)")
        cases = [("loop", ext_env), ("btrfs", btrfs_env)]
        plain: dict[str, list[float]] = {"loop": [], "btrfs": []}
        limited: dict[str, list[float]] = {"loop": [], "btrfs": []}
        for i in range(args.rounds):
            for backend, env in cases:
                name = f"bench-plain-{backend}-{i}"
                plain[backend].append(richc(env, "create", name))
                richc(env, "rm", name)
                name = f"bench-disk-{backend}-{i}"
                limited[backend].append(
                    richc(env, "create", name, "--disk", limit, "--disk-backend", backend)
                )
                richc(env, "rm", name)
        for backend, _ in cases:
            create.add(
                f"create --disk {limit} ({backend})",
                limited[backend],
                f"create, no limit ({backend} fs)",
                plain[backend],
            )

        # --- write throughput ---
        containers = {
            "unlimited on ext4": (ext_env, "bench-w-plain-ext", []),
            "loop-limited": (ext_env, "bench-w-loop", ["--disk", limit, "--disk-backend", "loop"]),
            "unlimited on btrfs": (btrfs_env, "bench-w-plain-btrfs", []),
            "btrfs-qgroup-limited": (
                btrfs_env,
                "bench-w-btrfs",
                ["--disk", limit, "--disk-backend", "btrfs"],
            ),
        }
        for env, name, extra in containers.values():
            subprocess.run(
                [RICHC, "create", name, *extra, "--start"], env=env, check=True, capture_output=True
            )
            created.append((env, name))
        host_ext = base / "host-ext-target"
        host_btrfs = btrfs_store / "host-target"
        raw = {
            "ext4": throughput(args.rounds, args.mib, [], str(host_ext), None),
            "btrfs": throughput(args.rounds, args.mib, [], str(host_btrfs), None),
        }
        print(
            f"\n== write throughput, {args.mib} MiB dd conv=fsync (medians of {args.rounds}; "
            "ratio = container / raw host dd on the same filesystem)"
        )
        print(f"{'container':<24}{'MiB/s':>10}  {'raw host dd':<16}{'MiB/s':>10}{'ratio':>8}")
        for label, (env, name, _) in containers.items():
            overhead = exec_overhead(env, name, args.rounds)
            rate = throughput(
                args.rounds, args.mib, [RICHC, "exec", name, "--"], "/bench.out", env, overhead
            )
            fs = "btrfs" if "btrfs" in label else "ext4"
            print(f"{label:<24}{rate:>10.0f}  {fs:<16}{raw[fs]:>10.0f}{rate / raw[fs]:>8.2f}")
        create.print()
    finally:
        for env, name in created:
            subprocess.run([RICHC, "rm", "--force", name], env=env, capture_output=True)
        if is_mount_point(btrfs_store):
            umount(btrfs_store, MNT_DETACH)
        for device in loopdev.devices_for(image):
            loopdev.detach(device)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
