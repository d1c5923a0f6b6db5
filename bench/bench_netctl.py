"""Throughput through netctl's plumbing, without richc containers: TCP from one network
namespace to another over a managed bridge, and from the host to a published port (DNAT,
by the host's own address and by 127.0.0.1), each against host loopback measured in the
same run with the same iperf3. Also the time netctl takes to bring a network up and to
attach one NIC.

    .venv/bin/python bench/bench_netctl.py [--rounds 3] [--seconds 2]

Needs root, iperf3, nftables and dnsmasq-base. Everything is made with unique names (the
nft table is richc_bench_<hex>) and removed at the end; ip_forward is put back as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netctl import bridge, ipam, network, nft, sysctl, veth
from netctl.errors import SubnetOverlap
from netctl.ports import PublishedPort, parse_publish

IPERF_PORT = 5201


def free_subnet() -> IPv4Network:
    host = bridge.host_networks()
    for third in range(256):
        candidate = IPv4Network(f"10.199.{third}.0/24")
        try:
            ipam.check_host_overlap(candidate, host)
        except SubnetOverlap:
            continue
        return candidate
    raise SystemExit("no free 10.199.x.0/24 subnet")


def netns() -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["unshare", "--net", "sleep", "3600"], stdin=subprocess.DEVNULL)
    mine = os.stat("/proc/self/ns/net").st_ino
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if os.stat(f"/proc/{proc.pid}/ns/net").st_ino != mine:
                return proc
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise SystemExit("unshare did not make a namespace")


def inside(pid: int | None, *argv: str) -> list[str]:
    return ["nsenter", "-t", str(pid), "-n", "--", *argv] if pid else list(argv)


@contextmanager
def iperf_server(pid: int | None, port: int) -> Iterator[None]:
    server = subprocess.Popen(
        inside(pid, "iperf3", "-s", "-p", str(port)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)  # iperf3 has no readiness signal; the first client retries anyway
    try:
        yield
    finally:
        server.kill()
        server.wait()


def gbits(pid: int | None, host: str, port: int, seconds: int) -> float:
    for _ in range(20):
        proc = subprocess.run(
            inside(pid, "iperf3", "-J", "-c", host, "-p", str(port), "-t", str(seconds)),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            result = json.loads(proc.stdout)
            return float(result["end"]["sum_received"]["bits_per_second"]) / 1e9
        time.sleep(0.1)
    raise SystemExit(f"iperf3 to {host}:{port} failed: {proc.stdout[-400:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=2)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("iperf3") is None:
        raise SystemExit("needs root and iperf3 (apt-get install iperf3)")

    tag = secrets.token_hex(3)
    work = Path(tempfile.mkdtemp(prefix=f"netctl-bench-{tag}-"))
    os.chmod(work, 0o755)
    net = network.NetworkDef.make(f"rb{tag}", free_subnet(), bridge=f"rb{tag}")
    table = f"richc_bench_{tag}"
    forward_was = sysctl.read("ipv4/ip_forward")
    spaces: list[subprocess.Popen[bytes]] = []
    up_times: list[float] = []
    attach_times: list[float] = []
    try:
        start = time.perf_counter()
        network.up(net, work / "state", work / "run")
        up_times.append(time.perf_counter() - start)
        a, b = netns(), netns()
        spaces += [a, b]
        addrs = {}
        for index, (name, proc) in enumerate((("a", a), ("b", b))):
            addr = net.gateway + 10 + index
            addrs[name] = addr
            nic = veth.NicSpec(
                name,
                0,
                net.bridge,
                ipam.mac_address(name, 0),
                IPv4Interface(f"{addr}/{net.subnet.prefixlen}"),
                net.gateway,
            )
            start = time.perf_counter()
            veth.attach(nic, proc.pid)
            attach_times.append(time.perf_counter() - start)
        host_port = 20000 + secrets.randbelow(9000)
        published = PublishedPort.bind(
            parse_publish(f"{host_port}:{IPERF_PORT}"), IPv4Address(addrs["b"]), net.bridge, "b"
        )
        network.apply_rules([net], [published], table=table)

        results: dict[str, list[float]] = {
            "host loopback": [],
            "container -> container": [],
            "host -> published (gateway addr)": [],
            "host -> published (127.0.0.1)": [],
        }
        loop_port = 20000 + secrets.randbelow(9000)
        with iperf_server(None, loop_port), iperf_server(b.pid, IPERF_PORT):
            for _ in range(args.rounds):
                # Interleaved, so a busy neighbour on the machine hits every path alike.
                results["host loopback"].append(gbits(None, "127.0.0.1", loop_port, args.seconds))
                results["container -> container"].append(
                    gbits(a.pid, str(addrs["b"]), IPERF_PORT, args.seconds)
                )
                results["host -> published (gateway addr)"].append(
                    gbits(None, str(net.gateway), host_port, args.seconds)
                )
                results["host -> published (127.0.0.1)"].append(
                    gbits(None, "127.0.0.1", host_port, args.seconds)
                )
        base = statistics.median(results["host loopback"])
        print(f"\n== TCP throughput, iperf3 -t {args.seconds}, median of {args.rounds}")
        print(f"{'path':<36}{'Gbit/s':>9}{'vs loopback':>13}")
        for path, samples in results.items():
            value = statistics.median(samples)
            print(f"{path:<36}{value:>9.2f}{value / base:>13.2f}")
        print(
            f"\nnetwork.up (bridge + dnsmasq): {up_times[0] * 1000:.1f} ms; "
            f"veth.attach: {statistics.median(attach_times) * 1000:.1f} ms per NIC (median)"
        )
    finally:
        for proc in spaces:
            proc.kill()
            proc.wait()
        for name in ("a", "b"):
            veth.detach(name, 0)
        nft.remove_table(table)
        network.down(net, work / "state", work / "run", purge=True)
        if not bridge.managed_bridges():  # no other network (a concurrent run) needs it
            sysctl.write("ipv4/ip_forward", forward_was)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
