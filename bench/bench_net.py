"""richc's networking against the raw tools, in the same run: the start latency a managed NIC
adds, and TCP throughput through richc's bridge and published ports against host loopback.

    .venv/bin/python bench/bench_net.py [--rounds 5] [--seconds 3] [--no-runc]

Start latency: `richc start` of a busybox container with `--net none`, with a NIC on a managed
network that no other container runs on (IDLE: its bridge has no carrier) or that another
container runs on (BUSY), and with a BUSY NIC plus a `--publish` (nftables DNAT rebuilt at
start), against raw `lxc-start -d` of two containers on a copied busybox rootfs: one with
richc's own rendered config as is (no NIC; richc's `--net none` is compared with it) and one
where the benchmark writes the lxc.net.0 keys itself (a veth on a bridge the benchmark makes
with `ip link`, a static ipv4.address and gateway; the NIC rows are compared with it). With runc
installed, the same for `--runtime runc` (no raw counterpart: the ratio there is to richc's own
`--net none`). Containers are restarted each round (`stop --kill`, untimed), and the order of
the sides rotates every round: the second of two back-to-back starts finds liblxc, the kernel's
paths and the CPU warm (see bench_lifecycle.py), so no side always gets the warm turn.

Throughput: iperf3 from Debian (`apt-get install iperf3`; without it this part is skipped).
busybox cannot run the dynamic iperf3, so the host's binary runs in a container's network
namespace with `nsenter -t PID -n`: the packets take the container's own path (its veth,
richc's bridge, nftables DNAT), only the process is not in the container's other namespaces.
Paths: host loopback (the baseline), container -> container over the bridge, host -> the
container's address (bridge, no DNAT), host -> the published port by the host's own address
and by 127.0.0.1 (DNAT, hairpin). Rounds interleave the paths, so a busy neighbour on the
machine hits them alike.

Needs root, LXC, nftables and dnsmasq (what `richc network create` needs). Everything lives
under a temp dir with a private RICHC_ROOT (richc then suffixes its bridge and nftables table
with a hash of that root); at the end or on Ctrl-C the containers, networks, raw container,
its bridge, the iperf3 servers and the root's lxcfs are removed, and what is left is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from ipaddress import IPv4Network
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_lifecycle import raw_create
from bench_netctl import inside, iperf_server
from common import RICHC, richc_env, timed

from netctl import bridge, ipam
from netctl.errors import SubnetOverlap

IPERF_PORT = 5201
WEB_PORT = 80


def run(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        list(argv), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr}{proc.stdout}")
    return proc.stdout


def quiet(argv: Sequence[str], env: dict[str, str] | None = None) -> bool:
    """Cleanup steps: run, never raise, say whether it worked."""
    proc = subprocess.run(list(argv), env=env, stdin=subprocess.DEVNULL, capture_output=True)
    return proc.returncode == 0


def free_subnets(count: int) -> list[IPv4Network]:
    """Random /24s under 10.200-249 that no route or address of the host overlaps (other
    helpers' test networks come and go on this machine, so not the first free one)."""
    host = bridge.host_networks()
    found: list[IPv4Network] = []
    for _ in range(500):
        candidate = IPv4Network(f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}.0/24")
        if candidate in found:
            continue
        try:
            ipam.check_host_overlap(candidate, host)
        except SubnetOverlap:
            continue
        found.append(candidate)
        if len(found) == count:
            return found
    raise SystemExit("no free 10.2xx.x.0/24 subnet")


def free_port(taken: set[int]) -> int:
    for _ in range(200):
        port = 20000 + secrets.randbelow(10000)
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise SystemExit("no free TCP port in 20000-29999")


def host_address(fallback: str) -> str:
    """The host's own address on its default route's link: what a client elsewhere would dial
    for a published port. Read from the routing table; nothing is sent."""
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "default"]) or "[]"):
        dev = route.get("dev")
        if not dev:
            continue
        for link in json.loads(run(["ip", "-j", "-4", "addr", "show", "dev", dev]) or "[]"):
            for info in link.get("addr_info", []):
                if info.get("local"):
                    return str(info["local"])
    return fallback


def veth_config(text: str, bridge_name: str, pair: str, mac: str, net: IPv4Network) -> str:
    """richc's rendered config with its lxc.net keys replaced by a hand-written veth NIC."""
    lines = [line for line in text.splitlines() if not line.startswith("lxc.net.")]
    gateway = net.network_address + 1
    lines += [
        "lxc.net.0.type = veth",
        f"lxc.net.0.link = {bridge_name}",
        "lxc.net.0.name = eth0",
        f"lxc.net.0.hwaddr = {mac}",
        f"lxc.net.0.veth.pair = {pair}",
        "lxc.net.0.flags = up",
        f"lxc.net.0.ipv4.address = {gateway + 9}/{net.prefixlen}",
        f"lxc.net.0.ipv4.gateway = {gateway}",
    ]
    return "\n".join(lines) + "\n"


def gbits(pid: int | None, host: str, port: int, seconds: int) -> float:
    """One iperf3 run from *pid*'s network namespace (None: the host's), in Gbit/s received.
    iperf3 3.12 exits 0 with an "error" in its JSON when the server is still busy with the
    previous client (which happens when two runs hit one server back to back): retry then."""
    error = ""
    for _ in range(50):
        argv = inside(pid, "iperf3", "-J", "-c", host, "-p", str(port), "-t", str(seconds))
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            result = {}
        received = result.get("end", {}).get("sum_received")
        if proc.returncode == 0 and received and not result.get("error"):
            return float(received["bits_per_second"]) / 1e9
        error = str(result.get("error") or proc.stderr or proc.stdout[-300:])
        time.sleep(0.1)
    raise SystemExit(f"iperf3 to {host}:{port} failed: {error}")


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


class Bench:
    """The run's resources, named so that cleanup finds every one of them."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.base = Path(tempfile.mkdtemp(prefix=f"richc-bench-net-{self.tag}-"))
        os.chmod(self.base, 0o755)  # the containers' rootfs lives below; LXC reads it as root
        self.root = self.base / "root"
        self.env = richc_env(self.root)
        self.lxcpath = self.base / "raw"
        self.lxcpath.mkdir()
        self.idle = f"bi{self.tag}"  # no other container runs on it: its bridge has no carrier
        self.busy = f"bu{self.tag}"  # a container stays running on it
        self.raw_bridge = f"rbn{self.tag}"
        self.raw_pair = f"rbv{self.tag}"
        self.made_bridge = False
        self.nets: dict[str, dict[str, Any]] = {}  # richc network inspect, by name

    def richc(self, *args: str) -> str:
        return run([RICHC, *args], self.env)

    def inspect(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.richc("inspect", name))
        return result

    def lxc(self, name: str) -> list[str]:
        return ["-P", str(self.lxcpath), "-n", name]

    def make_network(self, name: str, subnet: IPv4Network) -> None:
        self.richc("network", "create", name, "--subnet", str(subnet))
        self.nets[name] = json.loads(self.richc("network", "inspect", name))

    def make_raw_bridge(self, subnet: IPv4Network) -> None:
        run(["ip", "link", "add", self.raw_bridge, "type", "bridge"])
        self.made_bridge = True
        gateway = f"{subnet.network_address + 1}/{subnet.prefixlen}"
        run(["ip", "addr", "add", gateway, "dev", self.raw_bridge])
        run(["ip", "link", "set", self.raw_bridge, "up"])

    def cleanup(self) -> list[str]:
        """Remove everything; return what could not be removed."""
        left: list[str] = []
        containers = self.root / "var/lib/richc/containers"
        for entry in sorted(containers.glob("*")) if containers.is_dir() else []:
            if not quiet([RICHC, "rm", "--force", entry.name], self.env):
                left.append(f"richc container {entry.name}")
        networks: list[dict[str, Any]] = []
        if (self.root / "var/lib/richc/networks").is_dir():
            try:
                networks = json.loads(self.richc("network", "list", "-f", "json"))
            except SystemExit:
                left.append("richc network list failed")
        for net in networks:
            if not quiet([RICHC, "network", "rm", "--force", net["name"]], self.env):
                left.append(f"richc network {net['name']}")
        for entry in sorted(self.lxcpath.glob("*")):
            quiet(["lxc-stop", "-k", *self.lxc(entry.name)])
            if not quiet(["lxc-destroy", *self.lxc(entry.name)]):
                left.append(f"raw LXC container {entry.name}")
        for link in (self.raw_pair, self.raw_bridge):
            if Path("/sys/class/net", link).exists() and not quiet(["ip", "link", "del", link]):
                left.append(f"link {link}")
        self.stop_lxcfs(left)
        # Whatever is still mounted below the temp dir (an lxcfs that did not go), lazily, so
        # that rmtree cannot walk into it.
        for target in sorted(mounts_under(self.base), reverse=True):
            quiet(["umount", "-l", target])
        shutil.rmtree(self.base, ignore_errors=True)
        known = [*networks, *self.nets.values()]
        for name in sorted({str(n["bridge"]) for n in known if n.get("bridge")}):
            if Path("/sys/class/net", name).exists():
                left.append(f"bridge {name}")
        for table in sorted({str(n["table"]) for n in known if n.get("table")}):
            if quiet(["nft", "list", "table", "inet", table]):
                left.append(f"nftables table inet {table}")
        return left

    def stop_lxcfs(self, left: list[str]) -> None:
        """richc stops the lxcfs it started when its last container goes; if one is still
        running for this root (an interrupted rm), end it by its pid file."""
        pid_file = self.root / "run/richc/lxcfs/lxcfs.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return
        if str(self.root).encode() not in cmdline:
            return  # a reused pid: not this root's lxcfs
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            left.append(f"lxcfs pid {pid}")


def mounts_under(base: Path) -> list[str]:
    prefix = str(base) + "/"
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4].replace("\\040", " ")
        if target.startswith(prefix):
            out.append(target)
    return out


def start_latency(b: Bench, subnet_raw: IPv4Network, rounds: int, use_runc: bool) -> None:
    b.richc("create", "keeper", "--net", b.busy, "--runtime", "lxc", "--start")
    # The idle keeper holds lxcfs up for the whole run, as on a host with containers; without
    # it each start and stop of the last container would start and stop lxcfs. It also keeps
    # a port (carrier) on the BUSY network's bridge. On the IDLE network each start is the
    # only container, as on a network whose other containers are all stopped.
    ports: set[int] = set()
    richc_sides = [
        ("lat-none", "richc start --net none", ["--net", "none"], "lxc"),
        ("lat-idle", "richc start --net IDLE", ["--net", b.idle], "lxc"),
        ("lat-busy", "richc start --net BUSY", ["--net", b.busy], "lxc"),
        (
            "lat-pub",
            "richc start --net BUSY --publish",
            ["--net", b.busy, "--publish", f"{free_port(ports)}:{WEB_PORT}"],
            "lxc",
        ),
    ]
    if use_runc:
        richc_sides += [
            ("lat-rnone", "richc start --net none (runc)", ["--net", "none"], "runc"),
            ("lat-rbusy", "richc start --net BUSY (runc)", ["--net", b.busy], "runc"),
        ]
    for name, _, net_args, runtime in richc_sides:
        b.richc("create", name, *net_args, "--runtime", runtime)

    # The raw side: the config richc rendered for the --net none container (rewritten at each
    # start, so read after one), on its own copy of the busybox rootfs.
    b.richc("start", "lat-none")
    config_text = (b.root / "var/lib/richc/containers/lat-none/config").read_text()
    b.richc("stop", "--kill", "lat-none")
    image = b.root / "var/lib/richc/images/busybox/rootfs"
    b.make_raw_bridge(subnet_raw)
    mac = "02:be:" + ":".join(b.tag[i : i + 2] for i in (0, 2, 4)) + ":01"
    raw_create(image, config_text, b.lxcpath / "raw-none", "raw-none")
    veth_text = veth_config(config_text, b.raw_bridge, b.raw_pair, mac, subnet_raw)
    raw_create(image, veth_text, b.lxcpath / "raw-veth", "raw-veth")

    # (label, start argv, stop argv, env)
    sides: list[tuple[str, list[str], list[str], dict[str, str] | None]] = [
        (label, [RICHC, "start", name], [RICHC, "stop", "--kill", name], b.env)
        for name, label, _, _ in richc_sides
    ]
    for raw, label in (("raw-none", "lxc-start -d, no NIC"), ("raw-veth", "lxc-start -d, veth")):
        sides.append(
            (label, ["lxc-start", *b.lxc(raw), "-d"], ["lxc-stop", "-k", *b.lxc(raw)], None)
        )

    # One untimed start of each (page cache, image, liblxc), and a check that both NICs work:
    # each container reaches its bridge's gateway.
    for _, start, _, env in sides:
        run(start, env)
    for name, net in (("lat-idle", b.idle), ("lat-busy", b.busy)):
        gateway = str(b.nets[net]["gateway"])
        run([RICHC, "exec", name, "--", "ping", "-c1", "-W2", gateway], b.env)
    raw_gw = str(subnet_raw.network_address + 1)
    run(["lxc-attach", *b.lxc("raw-veth"), "--", "ping", "-c1", "-W2", raw_gw])
    for _, _, stop, env in sides:
        run(stop, env)

    samples: dict[str, list[float]] = {label: [] for label, *_ in sides}
    for i in range(rounds):
        shift = i % len(sides)
        for label, start, _, env in sides[shift:] + sides[:shift]:
            os.sync()  # richc fsyncs its state: it should not pay for the other side's writes
            samples[label].append(timed(start, env))
        for _, _, stop, env in sides:
            run(stop, env)

    ms = {label: median_ms(s) for label, s in samples.items()}
    raw_veth, raw_none = ms["lxc-start -d, veth"], ms["lxc-start -d, no NIC"]
    print(f"\n== start latency, busybox, median of {rounds} rounds (order rotates per round)")
    print(f"{'start':<34}{'ms':>8}{'vs raw lxc-start':>18}{'vs same, no NIC':>18}")
    no_nic = {
        "richc start --net IDLE": ms["richc start --net none"],
        "richc start --net BUSY": ms["richc start --net none"],
        "richc start --net BUSY --publish": ms["richc start --net none"],
        "richc start --net BUSY (runc)": ms.get("richc start --net none (runc)", 0.0),
        "lxc-start -d, veth": raw_none,
    }
    for label, value in ms.items():
        vs = raw_none if label in ("richc start --net none", "lxc-start -d, no NIC") else raw_veth
        vs_raw = f"{value / vs:.2f}" if "runc" not in label else "-"
        base = no_nic.get(label)
        vs_none = f"{value / base:.2f} ({value - base:+.0f} ms)" if base else "-"
        print(f"{label:<34}{value:>8.1f}{vs_raw:>18}{vs_none:>18}")
    for label, net in (("IDLE", b.idle), ("BUSY", b.busy)):
        info = b.nets[net]
        print(
            f"{label} = richc network {net} ({info['subnet']}, bridge {info['bridge']}, NAT, "
            "dnsmasq), "
            + ("no other container on it" if label == "IDLE" else "another container running")
        )
    print(f"raw veth: on bridge {b.raw_bridge} (ip link, {subnet_raw}), static address")
    sys.stdout.flush()
    for name, *_ in richc_sides:
        b.richc("rm", "--force", name)
    for raw in ("raw-none", "raw-veth"):
        quiet(["lxc-stop", "-k", *b.lxc(raw)])
        run(["lxc-destroy", *b.lxc(raw)])


def throughput(b: Bench, rounds: int, seconds: int) -> None:
    ports: set[int] = set()
    published = free_port(ports)
    b.richc("create", "tp-a", "--net", b.busy, "--runtime", "lxc", "--start")
    publish = f"{published}:{IPERF_PORT}"
    b.richc("create", "tp-b", "--net", b.busy, "--publish", publish, "--runtime", "lxc", "--start")
    a, srv = b.inspect("tp-a"), b.inspect("tp-b")
    a_pid, b_pid = int(a["pid"]), int(srv["pid"])
    b_addr = str(srv["net"]["nics"][0]["address"])
    host_ip = host_address(str(srv["net"]["nics"][0]["gateway"]))
    loop_port = free_port(ports)
    paths = {
        "host loopback (127.0.0.1)": (None, "127.0.0.1", loop_port),
        "container -> container (bridge)": (a_pid, b_addr, IPERF_PORT),
        "host -> container addr (no DNAT)": (None, b_addr, IPERF_PORT),
        f"host -> {host_ip}:published (DNAT)": (None, host_ip, published),
        "host -> 127.0.0.1:published (DNAT)": (None, "127.0.0.1", published),
    }
    results: dict[str, list[float]] = {path: [] for path in paths}
    # iperf_server kills its server by pid on the way out, Ctrl-C included.
    with iperf_server(None, loop_port), iperf_server(b_pid, IPERF_PORT):
        for _ in range(rounds):
            for path, (pid, addr, port) in paths.items():
                results[path].append(gbits(pid, addr, port, seconds))
    base = statistics.median(results["host loopback (127.0.0.1)"])
    print(f"\n== TCP throughput, iperf3 -t {seconds}, median of {rounds} rounds (interleaved)")
    print(f"{'path':<40}{'Gbit/s':>8}{'min-max':>14}{'vs loopback':>13}")
    for path, samples in results.items():
        value = statistics.median(samples)
        spread = f"{min(samples):.1f}-{max(samples):.1f}"
        print(f"{path:<40}{value:>8.2f}{spread:>14}{value / base:>13.2f}")
    print(
        "iperf3 is the host's binary run in the containers' network namespaces "
        "(nsenter -t PID -n): the container's veth, bridge and nftables path, not its "
        f"cgroup or mount namespace. Server in tp-b ({b_addr}:{IPERF_PORT}, published as "
        f"{published}), client in tp-a or on the host."
    )
    sys.stdout.flush()


def interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM: clean up as for Ctrl-C


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3, help="iperf3 run length")
    parser.add_argument("--no-runc", action="store_true", help="skip the runc start rows")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    signal.signal(signal.SIGTERM, interrupted)
    use_runc = not args.no_runc and shutil.which("runc") is not None

    b = Bench()
    status = 0
    try:
        subnet_idle, subnet_busy, subnet_raw = free_subnets(3)
        b.make_network(b.idle, subnet_idle)
        b.make_network(b.busy, subnet_busy)
        start_latency(b, subnet_raw, args.rounds, use_runc)
        if shutil.which("iperf3") is None:
            print("\n(throughput skipped: needs iperf3, `apt-get install iperf3`)")
        else:
            throughput(b, args.rounds, args.seconds)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        status = 130
    finally:
        # A second Ctrl-C must not cut the cleanup short (children inherit the ignore).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        left = b.cleanup()
        if left:
            print("cleanup left: " + "; ".join(left), file=sys.stderr)
        else:
            print("cleanup: containers, networks, raw container and bridge, iperf3, lxcfs gone")
    sys.exit(status or (1 if left else 0))


if __name__ == "__main__":
    main()
