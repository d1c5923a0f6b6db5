"""netctl.dnsmasq: conf and hosts rendering, leases, and that a pid file naming some other
process never gets that process signalled."""

from __future__ import annotations

import os
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Network
from pathlib import Path

import pytest

from netctl import dnsmasq, ipam, network, veth
from netctl.dnsmasq import HostEntry, Paths
from netctl.errors import InvalidSubnet
from netctl.guestcfg import StaticAddress

PATHS = Paths.under(Path("/var/lib/richc/networks/richc0"), Path("/run/richc/networks"), "richc0")


def conf_lines(**kw: object) -> list[str]:
    args: dict[str, object] = {
        "bridge": "richc0",
        "subnet": IPv4Network("10.77.0.0/24"),
        "gateway": IPv4Address("10.77.0.1"),
        "dhcp_range": (IPv4Address("10.77.0.128"), IPv4Address("10.77.0.254")),
        "paths": PATHS,
        "servers": ["192.0.2.53", "127.0.0.53"],
    }
    args.update(kw)
    return dnsmasq.render_conf(**args).splitlines()  # type: ignore[arg-type]


def test_conf() -> None:
    lines = conf_lines()
    for want in [
        "interface=richc0",
        "bind-interfaces",
        "except-interface=lo",
        "no-resolv",
        "server=192.0.2.53",
        "server=127.0.0.53",
        "user=nobody",
        "pid-file=/run/richc/networks/richc0.dnsmasq.pid",
        "dhcp-leasefile=/var/lib/richc/networks/richc0/leases",
        "dhcp-hostsfile=/var/lib/richc/networks/richc0/dhcp-hosts",
        "addn-hosts=/var/lib/richc/networks/richc0/hosts",
        "dhcp-range=10.77.0.128,10.77.0.254,255.255.255.0,12h",
        "dhcp-option=option:router,10.77.0.1",
        "dhcp-option=option:dns-server,10.77.0.1",
    ]:
        assert want in lines
    assert not any(line.startswith(("domain=", "enable-ra")) for line in lines)
    assert "" not in lines


def test_conf_with_a_domain_and_ipv6() -> None:
    lines = conf_lines(domain="lab", subnet6=IPv6Network("fd00:1:2:3::/64"), user="dnsmasq")
    assert {"domain=lab", "local=/lab/", "expand-hosts", "user=dnsmasq", "enable-ra"} <= set(lines)
    assert "dhcp-range=fd00:1:2:3::,ra-stateless,64,12h" in lines


def test_hosts_files() -> None:
    entries = [
        HostEntry("web", IPv4Address("10.77.0.10"), "02:00:00:00:00:0a"),
        HostEntry("dyn", None, "02:00:00:00:00:0b"),
        HostEntry("ext", IPv4Address("10.77.0.12"), None),
    ]
    assert dnsmasq.render_dhcp_hosts(entries) == (
        "02:00:00:00:00:0b,dyn\n02:00:00:00:00:0a,10.77.0.10,web\n"
    )
    assert dnsmasq.render_hosts(entries) == "10.77.0.12 ext\n10.77.0.10 web\n"


def test_host_resolvers(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nnameserver 192.0.2.53\nsearch example\nnameserver fe80::1%eth0\n")
    assert dnsmasq.host_resolvers(conf) == ["192.0.2.53", "fe80::1"]
    assert dnsmasq.host_resolvers(tmp_path / "missing") == []


def test_leases() -> None:
    text = (
        "1733400000 02:00:00:00:00:0a 10.77.0.10 web 01:02:00:00:00:00:0a\n"
        "1733400001 02:00:00:00:00:0b 10.77.0.130 * *\n"
        "duid 00:01:00:01\n"
        "1733400002 1234 fd00::5 web6 00:01\n"
    )
    leases = dnsmasq.parse_leases(text)
    assert [(lease.address, lease.hostname) for lease in leases] == [
        (IPv4Address("10.77.0.10"), "web"),
        (IPv4Address("10.77.0.130"), ""),
    ]


def test_write_if_changed(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "hosts"
    assert dnsmasq.write_if_changed(path, "a\n")
    assert not dnsmasq.write_if_changed(path, "a\n")
    assert path.stat().st_mode & 0o777 == 0o644
    assert dnsmasq.write_if_changed(path, "b\n") and path.read_text() == "b\n"


def test_a_stale_pid_file_never_signals_another_process(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path, tmp_path, "net")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        paths.pidfile.write_text(f"{other.pid}\n")
        state = dnsmasq.status(paths)
        assert not state.running and "not this network's dnsmasq" in state.reason
        assert not dnsmasq.reload(paths)
        assert not dnsmasq.stop(paths)
        assert other.poll() is None
        assert not paths.pidfile.exists()
    finally:
        other.kill()
        other.wait()
    assert dnsmasq.status(paths).reason == "no pid file"


def test_start_refuses_files_dnsmasq_cannot_reread(tmp_path: Path) -> None:
    if dnsmasq.dnsmasq_path() is None:
        pytest.skip("dnsmasq is not installed")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    paths = Paths.under(private, tmp_path, "net")
    with pytest.raises(dnsmasq.NetError, match="cannot enter") as info:
        dnsmasq.start(paths, user="nobody")
    assert info.value.hint and "chmod o+x" in info.value.hint


# --- veth (pure part) and the network facade's definition -------------------------------------


def test_lxc_net_keys() -> None:
    static = veth.NicSpec(
        "web",
        0,
        "richc0",
        "02:00:00:00:00:0a",
        IPv4Interface("10.77.0.10/24"),
        IPv4Address("10.77.0.1"),
    )
    dhcp = veth.NicSpec("web", 1, "lab", "02:00:00:00:00:0b", mtu=1400)
    assert veth.lxc_net_keys([static, dhcp]) == [
        ("lxc.net.0.type", "veth"),
        ("lxc.net.0.link", "richc0"),
        ("lxc.net.0.flags", "up"),
        ("lxc.net.0.name", "eth0"),
        ("lxc.net.0.hwaddr", "02:00:00:00:00:0a"),
        ("lxc.net.0.veth.pair", static.host_name),
        ("lxc.net.0.ipv4.address", "10.77.0.10/24"),
        ("lxc.net.0.ipv4.gateway", "10.77.0.1"),
        ("lxc.net.1.type", "veth"),
        ("lxc.net.1.link", "lab"),
        ("lxc.net.1.flags", "up"),
        ("lxc.net.1.name", "eth1"),
        ("lxc.net.1.hwaddr", "02:00:00:00:00:0b"),
        ("lxc.net.1.veth.pair", dhcp.host_name),
        ("lxc.net.1.mtu", "1400"),
    ]
    assert static.host_name != dhcp.host_name and len(static.host_name) <= 15


def test_network_def() -> None:
    net = network.NetworkDef.make("richc0", "10.77.0.0/24", ipv6="auto", seed="m")
    assert (net.bridge, str(net.gateway), net.nat) == ("richc0", "10.77.0.1", True)
    assert net.dhcp_range == (IPv4Address("10.77.0.128"), IPv4Address("10.77.0.254"))
    assert net.ipv6 is not None and net.gateway6 is not None
    assert net.gateway6.ip == net.ipv6.network_address + 1
    assert network.NetworkDef.from_dict(net.to_dict()) == net
    plain = network.NetworkDef.make("n", "10.78.0.0/24", nat=False, ipv6="none")
    assert plain.ipv6 is None and plain.gateway6 is None and not plain.rule_net.nat
    assert network.NetworkDef.make("n", "10.78.0.0/24", ipv6="fd00:9::/64").ipv6 == IPv6Network(
        "fd00:9::/64"
    )
    with pytest.raises(InvalidSubnet, match="--ipv6"):
        network.NetworkDef.make("n", "10.78.0.0/24", ipv6="maybe")


def test_taken_addresses_include_leases(tmp_path: Path) -> None:
    net = network.NetworkDef.make("n", "10.78.0.0/24")
    (tmp_path / "leases").write_text(
        "1 02:00:00:00:00:0b 10.78.0.130 guest *\n1 02:00:00:00:00:0c 10.78.0.131 * *\n"
    )
    entries = {
        "web": (IPv4Address("10.78.0.10"), "02:00:00:00:00:0a"),
        "db": (None, "02:00:00:00:00:0b"),
    }
    assert network.taken_addresses(net, entries, tmp_path) == {
        IPv4Address("10.78.0.10"): "web",
        IPv4Address("10.78.0.130"): "db",
        IPv4Address("10.78.0.131"): "a DHCP lease of 02:00:00:00:00:0c",
    }
    assert os.path.basename(network.paths(net, tmp_path, tmp_path).pidfile) == "n.dnsmasq.pid"


def _vm(address: str, gateway: str | None) -> StaticAddress:
    iface = IPv4Interface(address)
    return StaticAddress(
        "eth0",
        iface.ip,
        iface.network.prefixlen,
        IPv4Address(gateway) if gateway else None,
        (),
        "/etc/network/interfaces",
    )


def test_keep_ip_on_the_network_holding_the_address() -> None:
    lan = network.NetworkDef.make("lan", "192.168.10.0/24")
    other = network.NetworkDef.make("other", "10.77.0.0/24")
    plan = network.plan_keep_ip(_vm("192.168.10.5/24", "192.168.10.1"), [other, lan])
    assert plan.network == lan and "keeping 192.168.10.5/24" in plan.message
    moved = network.plan_keep_ip(_vm("192.168.10.5/24", "192.168.10.254"), [lan])
    assert moved.network == lan and "becomes 192.168.10.1" in moved.message
    clash = network.plan_keep_ip(_vm("192.168.10.1/24", None), [lan])
    assert clash.network is None and "gateway" in clash.message


def test_keep_ip_without_a_network_says_what_to_do() -> None:
    create = network.plan_keep_ip(_vm("192.168.10.5/24", "192.168.10.1"), [])
    assert create.network is None
    assert "richc network create NAME --subnet 192.168.10.0/24" in create.message
    odd_gateway = network.plan_keep_ip(_vm("192.168.10.5/24", "192.168.10.254"), [])
    assert "--net bridge:BR" in odd_gateway.message and "not the first" in odd_gateway.message
    host = [ipam.HostNet(IPv4Network("192.168.10.0/24"), "address 192.168.10.2/24 on br0", "br0")]
    on_lan = network.plan_keep_ip(_vm("192.168.10.5/24", "192.168.10.1"), [], host)
    assert "--net bridge:br0" in on_lan.message


def test_without_leases() -> None:
    text = "1 02:00:00:00:00:0a 10.77.0.10 web *\n1 02:00:00:00:00:0b 10.77.0.11 db *\nduid 00:01\n"
    assert dnsmasq.without_leases(text, ["02:00:00:00:00:0A"]) == (
        "1 02:00:00:00:00:0b 10.77.0.11 db *\nduid 00:01\n"
    )
    assert dnsmasq.without_leases(text, []) == text
