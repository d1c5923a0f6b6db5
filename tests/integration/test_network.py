"""Managed networking with real containers: names, NAT, published ports, --keep-ip, bad
input and crash safety, on LXC and runc side by side.

The "outside" world is a network namespace the test makes and reaches through the host by
routing; nothing leaves this machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RICHC, RichcRunner

pytestmark = pytest.mark.integration

HTTP_GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}"


def free_subnet() -> str:
    """A /24 in 10.200-250.x.0 that no host address or route overlaps."""
    taken = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    for _ in range(50):
        net = f"10.{secrets.choice(range(200, 250))}.{secrets.choice(range(0, 255))}.0/24"
        if net.rsplit(".", 1)[0] not in taken:
            return net
    pytest.skip("no free test subnet")


def inspect(richc: RichcRunner, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(richc("inspect", name).stdout)
    return data


def host_address() -> str:
    """An address of the host that is not loopback (the host's own LAN side)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def http_from_host(address: str, port: int) -> str:
    with socket.create_connection((address, port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        conn.settimeout(5)
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
    return data.decode(errors="replace")


def table_rules(root: Path) -> str:
    from richc import networks
    from richc.paths import HostPaths

    table = networks.table_for(HostPaths(root))
    proc = subprocess.run(["nft", "list", "table", "inet", table], capture_output=True, text=True)
    return proc.stdout


@pytest.fixture
def network(richc: RichcRunner) -> Iterator[tuple[str, str]]:
    name = "t" + secrets.token_hex(3)
    subnet = free_subnet()
    richc("network", "create", name, "--subnet", subnet)
    yield name, subnet
    # the richc fixture removes containers first, then every network of the root


def test_containers_find_each_other_by_name_and_publish_a_port(
    richc: RichcRunner, name: str, network: tuple[str, str], richc_root: Path
) -> None:
    net, subnet = network
    a, b = f"{name}-a", f"{name}-b"
    port = 20000 + secrets.randbelow(20000)
    richc("create", a, "--net", net, "--start")
    richc("create", b, "--runtime", "runc", "--net", net, "--publish", f"{port}:80", "--start")
    info_a, info_b = inspect(richc, a), inspect(richc, b)
    nic_b = info_b["net"]["nics"][0]
    assert nic_b["network"] == net and ipaddress.ip_address(
        nic_b["address"]
    ) in ipaddress.ip_network(subnet)
    assert info_b["net"]["ports"] == [
        {"host_ip": None, "host_port": port, "container_ip": nic_b["address"],
         "container_port": 80, "proto": "tcp"}
    ]  # fmt: skip
    # What the user sees inside: the address on eth0, the other container by name.
    assert nic_b["address"] in richc("exec", b, "--", "ip", "-4", "addr", "show", "eth0").stdout
    richc("exec", a, "--", "ping", "-c", "1", "-W", "3", b)
    richc("exec", b, "--", "ping", "-c", "1", "-W", "3", a)
    listed = json.loads(richc("list", "--format", "json").stdout)
    by_name = {c["name"]: c for c in listed}
    assert by_name[a]["net"]["nics"][0]["address"] == info_a["net"]["nics"][0]["address"]
    assert by_name[a]["net"]["nics"][0]["mac"] == info_a["net"]["nics"][0]["mac"]

    richc(
        "exec",
        b,
        "--",
        "sh",
        "-c",
        f"mkdir -p /www && echo hi-{b} > /www/index.html && httpd -p 80 -h /www",
    )
    assert (
        f"{port}/tcp" in richc("port", b).stdout
        or f"80/tcp -> 0.0.0.0:{port}" in richc("port", b).stdout
    )
    assert f"hi-{b}" in http_from_host("127.0.0.1", port)  # from the host itself
    assert f"hi-{b}" in http_from_host(host_address(), port)
    hairpin = richc("exec", a, "--", "sh", "-c", HTTP_GET.format(host=host_address(), port=port))
    assert f"hi-{b}" in hairpin.stdout  # another container, through the host's address
    assert f"dport {port}" in table_rules(richc_root)

    richc("stop", b)
    assert f"dport {port}" not in table_rules(richc_root)  # rules go at stop...
    with pytest.raises(OSError):
        http_from_host("127.0.0.1", port)
    richc("start", b)  # ...and come back at start
    assert f"dport {port}" in table_rules(richc_root)


def test_a_container_reaches_the_outside_through_nat(
    richc: RichcRunner, name: str, network: tuple[str, str]
) -> None:
    net, _ = network
    ns = "rto" + secrets.token_hex(3)
    host_if, peer = "rto" + secrets.token_hex(4), "rtp" + secrets.token_hex(4)
    octet = secrets.randbelow(250)
    outside, gateway = f"198.18.{octet}.2", f"198.18.{octet}.1"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    server = None
    try:
        subprocess.run(
            ["ip", "link", "add", host_if, "type", "veth", "peer", "name", peer], check=True
        )
        subprocess.run(["ip", "link", "set", peer, "netns", ns], check=True)
        subprocess.run(["ip", "addr", "add", f"{gateway}/30", "dev", host_if], check=True)
        subprocess.run(["ip", "link", "set", host_if, "up"], check=True)
        inside = ["ip", "netns", "exec", ns]
        subprocess.run([*inside, "ip", "addr", "add", f"{outside}/30", "dev", peer], check=True)
        subprocess.run([*inside, "ip", "link", "set", peer, "up"], check=True)
        subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
        # The outside answers with the address it saw the connection come from.
        code = (
            "import socket\n"
            f"s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('{outside}', 7777)); s.listen()\n"
            "while True:\n"
            "    c, peer = s.accept(); c.sendall(peer[0].encode() + b'\\n'); c.close()\n"
        )
        server = subprocess.Popen([*inside, sys.executable, "-c", code])
        richc("create", name, "--net", net, "--start")
        deadline = time.monotonic() + 10
        seen = ""
        while time.monotonic() < deadline and not seen.strip():
            seen = richc("exec", name, "--", "sh", "-c", f"nc -w 3 {outside} 7777",
                         check=False).stdout  # fmt: skip
        assert seen.strip() == gateway  # masqueraded to the host's address on that link
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", host_if], check=False)
        subprocess.run(["ip", "netns", "del", ns], check=False)


VM_INTERFACES = (
    "auto lo\niface lo inet loopback\n\nauto ens3\niface ens3 inet static\n"
    "    address {address}\n    netmask 255.255.255.0\n    gateway {gateway}\n"
)
VM_NETWORKD = "[Match]\nName=ens3\n\n[Network]\nAddress={address}/24\nGateway={gateway}\n"


def _vm_tarball(richc_root: Path, tmp_path: Path, kind: str, address: str, gateway: str) -> Path:
    """A busybox tree posing as a migrated VM with a static address in ifupdown or networkd."""
    image = richc_root / "var/lib/richc/images/busybox/rootfs"
    tarball = tmp_path / f"vm-{kind}.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(image, arcname=".")
        text = (VM_INTERFACES if kind == "ifupdown" else VM_NETWORKD).format(
            address=address, gateway=gateway
        )
        path = (
            "etc/network/interfaces"
            if kind == "ifupdown"
            else "etc/systemd/network/10-ens3.network"
        )
        data = tmp_path / f"{kind}.conf"
        data.write_text(text)
        tar.add(data, arcname=path)
    return tarball


@pytest.mark.parametrize("kind", ["ifupdown", "networkd"])
def test_keep_ip_gives_a_migrated_vm_its_own_address(
    richc: RichcRunner,
    name: str,
    network: tuple[str, str],
    richc_root: Path,
    tmp_path: Path,
    kind: str,
) -> None:
    _, subnet = network
    prefix = subnet.rsplit(".", 1)[0]
    address, gateway = f"{prefix}.42", f"{prefix}.1"
    richc("create", name + "-seed")  # builds the busybox image the tarball is made from
    richc("rm", name + "-seed")
    tarball = _vm_tarball(richc_root, tmp_path, kind, address, gateway)
    richc("create", name, "--from", f"tar:{tarball}", "--keep-ip", "--start")
    nic = inspect(richc, name)["net"]["nics"][0]
    assert nic["address"] == address and nic["network"] == network[0]
    assert f"{address}/24" in richc("exec", name, "--", "ip", "-4", "addr", "show", "eth0").stdout
    richc("exec", name, "--", "ping", "-c", "1", "-W", "3", gateway)
    # Without a network holding the address, the error says which bridge to give.
    lonely = _vm_tarball(richc_root, tmp_path, kind, "172.31.250.9", "172.31.250.1")
    other = richc("create", name + "-x", "--from", f"tar:{lonely}", "--keep-ip", check=False)
    assert other.returncode == 1 and "--net bridge:BR" in other.stderr
    assert not (richc_root / "var/lib/richc/containers" / (name + "-x")).exists()


def test_bad_input_is_refused_and_changes_nothing(
    richc: RichcRunner, name: str, network: tuple[str, str], richc_root: Path
) -> None:
    net, subnet = network
    prefix = subnet.rsplit(".", 1)[0]
    before = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    for args, words in [
        (("network", "create", "x" + name[-6:], "--subnet", "10.1.2.300/24"), "subnet"),
        (("network", "create", "y" + name[-6:], "--subnet", subnet), "overlap"),
        (("create", name, "--net", "nosuchnet"), "no network named nosuchnet"),
        (("create", name, "--net", net, "--ip", "192.0.2.77"), "outside"),
        (("create", name, "--net", net, "--publish", "99999:80"), "port"),
        (("create", name, "--net", "bridge:nosuchbr0"), "no bridge"),
    ]:
        proc = richc(*args, check=False)
        assert proc.returncode in (1, 2), (args, proc.stderr)
        assert words in proc.stderr.lower(), (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    richc("create", name + "-a", "--net", net, "--ip", f"{prefix}.50", "--publish", "18181:80")
    taken = richc("create", name + "-b", "--net", net, "--ip", f"{prefix}.50", check=False)
    assert taken.returncode == 1 and f"{name}-a" in taken.stderr  # names the holder
    clash = richc("create", name + "-c", "--net", net, "--publish", "18181:8080", check=False)
    assert clash.returncode == 1 and f"{name}-a" in clash.stderr
    containers = sorted(p.name for p in (richc_root / "var/lib/richc/containers").iterdir())
    assert containers == [name + "-a"]
    assert sorted(n.name for n in (richc_root / "var/lib/richc/networks").iterdir()) == [net]
    after = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert len(after.splitlines()) == len(before.splitlines())


def test_rm_force_after_sigkill_mid_create_leaves_no_port_rule_or_lease(
    richc: RichcRunner, name: str, network: tuple[str, str], richc_root: Path, tmp_path: Path
) -> None:
    net, _ = network
    # A source big enough that the copy is still running when the kill comes.
    big = tmp_path / "big"
    (big / "sbin").mkdir(parents=True)
    (big / "sbin/init").symlink_to("/bin/busybox")
    for i in range(40):
        (big / f"blob{i}").write_bytes(os.urandom(1 << 20))
    env = dict(os.environ, RICHC_ROOT=str(richc_root))
    proc = subprocess.Popen(
        [str(RICHC), "create", name, "--from", f"dir:{big}", "--init", "busybox",
         "--net", net, "--publish", "18282:80"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    state_file = richc_root / "var/lib/richc/containers" / name / "state.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if json.loads(state_file.read_text()).get("net"):
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    hosts = richc_root / "var/lib/richc/networks" / net / "dhcp-hosts"
    richc("rm", "--force", name)
    assert name not in hosts.read_text()
    assert "18282" not in table_rules(richc_root)
    veths = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    from netctl.ipam import veth_name
    from richc import networks
    from richc.paths import HostPaths

    assert veth_name(networks.nic_id(HostPaths(richc_root), name), 0) not in veths
    richc("create", name, "--net", net)  # the name and the address are free again
