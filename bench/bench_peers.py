"""richc against the tools an operator would pick instead, in the same run: Debian's LXD 5.0
and Podman 4.3 (install them with bench/peers/setup.sh). Not part of the test suite.

    .venv/bin/python bench/bench_peers.py [--count 200] [--rounds 5] [--only lxd,podman]

Each tool runs the same busybox root filesystem (richc's busybox image with the files richc
writes for busybox init, copied out of a richc container):

* richc: `richc create NAME --from busybox` + `richc start NAME` (lxc runtime, lxcfs views);
* LXD: `lxc launch` of a local image imported from a tarball of that tree, after
  `lxd init` with a dir storage pool (preseeded: `--auto` would add a host bridge), with a
  daemon and LXD_DIR of the run's own;
* Podman: `podman run -d --systemd=always` of an image made by `podman import` of the tree,
  with a storage root of the run's own, `--network none`, `--cgroup-manager cgroupfs` (no
  systemd here) and the runc runtime.

Measured per tool: create+start of one container and `exec -- true` (medians of --rounds),
then --count containers started --workers at a time: the host's MemAvailable drop / N while
they run, and the median of three `list` calls in JSON. Printed as ratios over richc.
Everything the run made is removed at the end, also on Ctrl-C or SIGTERM.
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from common import RICHC, richc_env

SETTLE_S = 3.0


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable")


def run(
    argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def must(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    proc = run(argv, env)
    if proc.returncode != 0:
        raise ToolFailed(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def seconds(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    must(argv, env)
    return time.perf_counter() - t0


class ToolFailed(Exception):
    pass


@dataclass
class Tool:
    """How one tool does each measured step (argv builders) and cleans up."""

    name: str
    create_start: Callable[[str], list[list[str]]]
    exec_true: Callable[[str], list[str]]
    list_json: list[str]
    remove: Callable[[str], list[str]]
    env: dict[str, str] | None = None


@dataclass
class Figures:
    create_start_ms: float | None = None
    exec_ms: float | None = None
    list_ms: float | None = None
    mem_kib: float | None = None
    started: int = 0
    error: str = ""
    notes: list[str] = field(default_factory=list)


def measure(tool: Tool, count: int, rounds: int, workers: int) -> Figures:
    fig = Figures()
    try:
        times, exec_times = [], []
        for i in range(rounds):
            name = f"{tool.name[:3].lower()}-one-{i}"
            t0 = time.perf_counter()
            for argv in tool.create_start(name):
                must(argv, tool.env)
            times.append(time.perf_counter() - t0)
            exec_times.append(seconds(tool.exec_true(name), tool.env))
            must(tool.remove(name), tool.env)
        fig.create_start_ms = statistics.median(times) * 1000
        fig.exec_ms = statistics.median(exec_times) * 1000
        print(
            f"  {tool.name}: create+start {fig.create_start_ms:.0f} ms, exec {fig.exec_ms:.0f} ms"
        )

        names = [f"{tool.name[:3].lower()}-{i}" for i in range(count)]
        time.sleep(SETTLE_S)
        baseline = mem_available()

        def up(name: str) -> str | None:
            for argv in tool.create_start(name):
                proc = run(argv, tool.env)
                if proc.returncode != 0:
                    return f"{' '.join(argv)}: {proc.stderr.strip()}"
            return None

        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            errors = [e for e in pool.map(up, names) if e]
        took = time.perf_counter() - t0
        if errors:
            fig.error = f"{len(errors)} of {count} failed; first: {errors[0]}"
        fig.started = count - len(errors)
        time.sleep(SETTLE_S)
        if fig.started:
            fig.mem_kib = (baseline - mem_available()) / fig.started / 1024
        fig.list_ms = statistics.median(seconds(tool.list_json, tool.env) for _ in range(3)) * 1000
        print(
            f"  {tool.name}: {fig.started} up in {took:.0f}s ({fig.started / took:.1f}/s), "
            f"{fig.mem_kib or 0:.0f} KiB each, list {fig.list_ms:.0f} ms"
        )
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda n: run(tool.remove(n), tool.env), names))
    except (ToolFailed, subprocess.TimeoutExpired) as exc:
        fig.error = str(exc)
        print(f"  {tool.name}: FAILED: {exc}")
    return fig


# --- the tools -------------------------------------------------------------------------


def richc_tool(root: Path) -> Tool:
    env = richc_env(root)
    return Tool(
        "richc",
        create_start=lambda n: [[RICHC, "create", n, "--from", "busybox"], [RICHC, "start", n]],
        exec_true=lambda n: [RICHC, "exec", n, "--", "true"],
        list_json=[RICHC, "list", "--format", "json"],
        remove=lambda n: [RICHC, "rm", "--force", n],
        env=env,
    )


class Lxd:
    """A private LXD daemon: its own LXD_DIR, started here, shut down at the end."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "lxd"
        self.dir.mkdir()
        self.env = dict(os.environ, LXD_DIR=str(self.dir))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, image_tar: Path) -> Tool:
        if shutil.which("lxd") is None:
            raise ToolFailed("lxd is not installed (bench/peers/setup.sh)")
        self.proc = subprocess.Popen(
            ["lxd", "--group", "root", "--logfile", str(self.dir / "lxd.log")],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        must(["lxd", "waitready", "--timeout", "60"], self.env)
        # What `lxd init --auto --storage-backend dir` sets up, less its network: LXD 5.0's
        # --auto also makes lxdbr0, a NAT bridge on the host (here it fails: "Failed to
        # automatically find an unused IPv4 subnet"), and the host's networking is not the
        # benchmark's to change. Containers get no NIC, as richc's `net: none`.
        preseed = (
            "storage_pools:\n- name: default\n  driver: dir\n"
            "profiles:\n- name: default\n  devices:\n"
            "    root: {path: /, pool: default, type: disk}\n"
        )
        proc = subprocess.run(
            ["lxd", "init", "--preseed"], input=preseed, env=self.env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        if proc.returncode != 0:
            raise ToolFailed(f"lxd init --preseed: {proc.stderr.strip()}")
        networks = json.loads(must(["lxc", "network", "list", "--format", "json"], self.env))
        managed = [n for n in networks if n.get("managed")]
        if managed:
            raise ToolFailed(f"lxd init made networks: {[n['name'] for n in managed]}")
        must(["lxc", "image", "import", str(image_tar), "--alias", "bench-busybox"], self.env)
        return Tool(
            f"LXD {must(['lxd', '--version'], self.env).strip()}",
            create_start=lambda n: [["lxc", "launch", "bench-busybox", n]],
            exec_true=lambda n: ["lxc", "exec", n, "--", "true"],
            list_json=["lxc", "list", "--format", "json"],
            remove=lambda n: ["lxc", "delete", "--force", n],
            env=self.env,
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        names = []
        with_names = run(["lxc", "list", "--format", "json"], self.env, timeout=60)
        if with_names.returncode == 0:
            names = [c["name"] for c in json.loads(with_names.stdout)]
        for name in names:
            run(["lxc", "delete", "--force", name], self.env, timeout=60)
        run(["lxd", "shutdown", "--timeout", "60"], self.env, timeout=90)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None
        unmount_under(self.dir)


class Podman:
    """Podman with a storage root, run root and temp dir of the run's own."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "podman"
        (self.dir / "tmp").mkdir(parents=True)
        self.cmd = [
            "podman", "--root", str(self.dir / "storage"), "--runroot", str(self.dir / "run"),
            "--tmpdir", str(self.dir / "tmp"), "--cgroup-manager", "cgroupfs",
            "--events-backend", "file", "--runtime", "runc",
        ]  # fmt: skip
        self.used = False

    def start(self, rootfs_tar: Path) -> Tool:
        if shutil.which("podman") is None:
            raise ToolFailed("podman is not installed (bench/peers/setup.sh)")
        self.used = True
        must([*self.cmd, "import", str(rootfs_tar), "localhost/bench-busybox:latest"])
        version = must(["podman", "--version"]).strip()
        return Tool(
            version.replace("podman version", "Podman"),
            create_start=lambda n: [
                [
                    *self.cmd,
                    "run",
                    "-d",
                    "--systemd=always",
                    "--network",
                    "none",
                    # This host gives root no CAP_SYS_RESOURCE: Podman's default rlimits
                    # (nofile 1048576) fail with EPERM; these fit under the host's.
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=4096:4096",
                    "--name",
                    n,
                    "localhost/bench-busybox:latest",
                    "/sbin/init",
                ]
            ],
            exec_true=lambda n: [*self.cmd, "exec", n, "true"],
            list_json=[*self.cmd, "ps", "-a", "--format", "json"],
            remove=lambda n: [*self.cmd, "rm", "--force", "--time", "0", n],
        )

    def stop(self) -> None:
        if not self.used:
            return
        run([*self.cmd, "rm", "--all", "--force", "--time", "0"], timeout=300)
        run([*self.cmd, "rmi", "--all", "--force"], timeout=120)
        run([*self.cmd, "system", "reset", "--force"], timeout=120)
        self.used = False
        unmount_under(self.dir)


def unmount_under(path: Path) -> None:
    """Lazily unmount whatever a tool left mounted under *path*, deepest first."""
    prefix = str(path.resolve())
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4] for line in handle if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        run(["umount", "-l", point], timeout=30)


def busybox_tree(base: Path, root: Path) -> Path:
    """A populated busybox rootfs: richc's image plus what create writes for busybox init."""
    env = richc_env(root)
    must([RICHC, "create", "tmpl", "--from", "busybox"], env)
    tree = base / "busybox-rootfs"
    subprocess.run(
        ["cp", "-a", f"{root}/var/lib/richc/containers/tmpl/rootfs/.", str(tree)], check=True
    )
    must([RICHC, "rm", "--force", "tmpl"], env)
    return tree


def lxd_image(base: Path, tree: Path) -> Path:
    staging = base / "lxd-image"
    staging.mkdir()
    (staging / "metadata.yaml").write_text(
        f"architecture: x86_64\ncreation_date: {int(time.time())}\n"
        "properties:\n  description: busybox (bench_peers)\n  os: busybox\n"
    )
    os.symlink(tree, staging / "rootfs")
    tarball = base / "busybox-lxd.tar.gz"
    subprocess.run(
        ["tar", "-C", str(staging), "-h", "-czf", str(tarball), "metadata.yaml", "rootfs"],
        check=True,
    )
    return tarball


def print_report(count: int, figures: dict[str, Figures]) -> None:
    base = figures.get("richc")
    print(
        "\n== peers: busybox system containers; ratio = tool / richc (below 1: the tool is cheaper)"
    )
    print(f"{'tool':<22}{'create+start':>14}{'exec':>10}{f'list ({count})':>14}{'KiB/ct':>10}")

    def cell(value: float | None, ref: float | None, unit: str) -> str:
        if value is None:
            return "-"
        text = f"{value:.0f}{unit}"
        return f"{text} ({value / ref:.2f}x)" if ref and value and base is not None else text

    ref = base or Figures()
    for name, fig in figures.items():
        print(
            f"{name:<22}{cell(fig.create_start_ms, ref.create_start_ms, 'ms'):>14}"
            f"{cell(fig.exec_ms, ref.exec_ms, 'ms'):>14}"
            f"{cell(fig.list_ms, ref.list_ms, 'ms'):>16}"
            f"{cell(fig.mem_kib, ref.mem_kib, ''):>16}"
        )
    for name, fig in figures.items():
        if fig.error:
            print(f"{name}: {fig.error}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--only", default="lxd,podman", help="peers to run besides richc")
    args = parser.parse_args()
    peers = {p.strip() for p in args.only.split(",") if p.strip()}

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    base = Path(tempfile.mkdtemp(prefix="richc-peers-"))
    root = base / "root"
    lxd, podman = Lxd(base), Podman(base)
    figures: dict[str, Figures] = {}
    try:
        tree = busybox_tree(base, root)
        rootfs_tar = base / "busybox-rootfs.tar"
        subprocess.run(["tar", "-C", str(tree), "-cf", str(rootfs_tar), "."], check=True)
        print(f"richc, {args.count} containers, {args.workers} at a time, {args.rounds} rounds")
        figures["richc"] = measure(richc_tool(root), args.count, args.rounds, args.workers)
        must([RICHC, "lxcfs", "stop"], richc_env(root))
        for peer, starter in (
            ("lxd", lambda: lxd.start(lxd_image(base, tree))),
            ("podman", lambda: podman.start(rootfs_tar)),
        ):
            if peer not in peers:
                continue
            try:
                tool = starter()
            except (ToolFailed, subprocess.TimeoutExpired) as exc:
                figures[peer] = Figures(error=f"could not set up: {exc}")
                print(f"{peer}: could not set up: {exc}")
                continue
            print(f"{tool.name}:")
            figures[tool.name] = measure(tool, args.count, args.rounds, args.workers)
            (lxd if peer == "lxd" else podman).stop()
        print_report(args.count, figures)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
    finally:
        containers = root / "var/lib/richc/containers"
        for entry in containers.iterdir() if containers.is_dir() else []:
            run([RICHC, "rm", "--force", entry.name], richc_env(root))
        run([RICHC, "lxcfs", "stop"], richc_env(root))
        lxd.stop()
        podman.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
