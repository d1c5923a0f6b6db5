"""netctl.ipam and netctl.ports: address planning and port parsing, pure."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from netctl import ipam
from netctl.errors import (
    AddressConflict,
    InvalidAddress,
    InvalidPort,
    InvalidSubnet,
    PortConflict,
    SubnetOverlap,
)
from netctl.ipam import HostNet
from netctl.ports import (
    PortRequest,
    Proto,
    PublishedPort,
    check_conflicts,
    check_host_ports,
    parse_proc_net,
    parse_publish,
)


def test_parse_subnet_accepts_a_cidr() -> None:
    assert ipam.parse_subnet(" 10.77.0.0/24 ") == IPv4Network("10.77.0.0/24")
    assert ipam.parse_subnet("192.168.5.0/30").num_addresses == 4


@pytest.mark.parametrize(
    ("text", "says", "hint"),
    [
        ("10.77.0.0", "no prefix length", "CIDR"),
        ("10.77.0.5/24", "host bits set", "10.77.0.0/24"),
        ("10.77.0.0/33", "not a valid CIDR", "10.77.0.0/24"),
        ("bogus/24", "not a valid CIDR", None),
        ("fd00::/64", "IPv6", "--ipv6"),
        ("10.77.0.0/31", "too small", "/30"),
        ("0.0.0.0/4", "too large", "/8"),
        ("127.0.0.0/24", "special-purpose", None),
        ("224.0.0.0/24", "special-purpose", None),
    ],
)
def test_parse_subnet_refuses_with_a_reason(text: str, says: str, hint: str | None) -> None:
    with pytest.raises(InvalidSubnet, match=says) as info:
        ipam.parse_subnet(text)
    if hint:
        assert info.value.hint is not None and hint in info.value.hint


def test_gateway_and_dhcp_range() -> None:
    net = IPv4Network("10.77.0.0/24")
    assert ipam.gateway(net) == IPv4Address("10.77.0.1")
    assert str(ipam.gateway_interface(net)) == "10.77.0.1/24"
    assert ipam.dhcp_range(net) == (IPv4Address("10.77.0.128"), IPv4Address("10.77.0.254"))
    # The smallest network: gateway .1, one NIC .2, and that is the whole pool.
    small = IPv4Network("10.9.9.4/30")
    assert ipam.dhcp_range(small) == (IPv4Address("10.9.9.6"), IPv4Address("10.9.9.6"))


def test_overlap_with_another_network_names_it() -> None:
    others = {"web": IPv4Network("10.77.0.0/16"), "db": IPv4Network("10.80.0.0/24")}
    with pytest.raises(SubnetOverlap, match="'web'") as info:
        ipam.check_overlap(IPv4Network("10.77.3.0/24"), others)
    assert info.value.other == "web"
    ipam.check_overlap(IPv4Network("10.81.0.0/24"), others)


def test_overlap_with_the_host() -> None:
    host = [
        HostNet(IPv4Network("0.0.0.0/0"), "route default via eth0", "eth0"),
        HostNet(IPv4Network("192.0.2.0/24"), "address 192.0.2.2/24 on eth0", "eth0"),
        HostNet(IPv4Network("10.77.0.0/24"), "address 10.77.0.1/24 on richc0", "richc0"),
    ]
    with pytest.raises(SubnetOverlap, match=r"address 192\.0\.2\.2/24 on eth0"):
        ipam.check_host_overlap(IPv4Network("192.0.2.128/25"), host)
    # The default route overlaps everything and means nothing here; the network's own
    # bridge is not a conflict when it is brought up again.
    ipam.check_host_overlap(IPv4Network("10.77.0.0/24"), host, own_link="richc0")
    with pytest.raises(SubnetOverlap, match="richc0"):
        ipam.check_host_overlap(IPv4Network("10.77.0.0/24"), host)


def test_pick_subnet_skips_taken_ones() -> None:
    taken = [IPv4Network("10.77.0.0/16"), IPv4Network("0.0.0.0/0")]
    assert ipam.pick_subnet(taken) == IPv4Network("10.78.0.0/20")
    # A host route inside the first /20 moves the pick to the next one.
    assert ipam.pick_subnet([IPv4Network("10.77.3.0/24")]) == IPv4Network("10.77.16.0/20")
    assert ipam.pick_subnet([]) == IPv4Network("10.77.0.0/20")
    with pytest.raises(SubnetOverlap):
        ipam.pick_subnet([IPv4Network("10.0.0.0/8")])


def test_check_static() -> None:
    net = IPv4Network("10.77.0.0/24")
    assert ipam.check_static("10.77.0.10", net) == IPv4Address("10.77.0.10")
    for addr, says in [
        ("10.78.0.10", "outside"),
        ("10.77.0.0", "network address"),
        ("10.77.0.255", "broadcast"),
        ("10.77.0.1", "gateway"),
        ("10.77.0", "not an IPv4 address"),
    ]:
        with pytest.raises(InvalidAddress, match=says):
            ipam.check_static(addr, net)


def test_a_taken_address_names_its_holder() -> None:
    net = IPv4Network("10.77.0.0/24")
    for taken in ({"10.77.0.10": "web1"}, {IPv4Address("10.77.0.10"): "web1"}):
        with pytest.raises(AddressConflict, match="taken by web1") as info:
            ipam.check_static("10.77.0.10", net, taken)
        assert info.value.holder == "web1"
    ipam.check_static("10.77.0.11", net, {"10.77.0.10": "web1"})


def test_mac_is_stable_local_and_unicast() -> None:
    mac = ipam.mac_address("web", 0)
    assert mac == ipam.mac_address("web", 0)
    assert mac != ipam.mac_address("web", 1) != ipam.mac_address("db", 0)
    first = int(mac[:2], 16)
    assert first & 0x02 and not first & 0x01
    assert ipam.parse_mac(mac) == mac


def test_parse_mac() -> None:
    assert ipam.parse_mac("02-AA-bb-00-11-22") == "02:aa:bb:00:11:22"
    for bad, says in [
        ("01:00:5e:00:00:01", "multicast"),
        ("zz", "not a MAC"),
        ("00:00:00:00:00:00", "not usable"),
    ]:
        with pytest.raises(InvalidAddress, match=says):
            ipam.parse_mac(bad)


def test_veth_names_fit_ifnamsiz_and_are_stable() -> None:
    long_name = "a-very-long-container-name-that-goes-on-and-on"
    name = ipam.veth_name(long_name, 0)
    assert len(name) <= 15 and name.startswith("rc") and name == ipam.veth_name(long_name, 0)
    assert name != ipam.veth_name(long_name, 1)
    assert ipam.bridge_name("richc0") == "richc0"
    hashed = ipam.bridge_name("a network/with odd chars")
    assert hashed.startswith("rcbr") and len(hashed) <= 15


def test_ula_subnet() -> None:
    ula = ipam.ula_subnet("richc0", seed="machine-a")
    assert ula.prefixlen == 64 and ula.subnet_of(IPv6Network("fd00::/8"))
    assert ula == ipam.ula_subnet("richc0", seed="machine-a")
    assert ula != ipam.ula_subnet("richc0", seed="machine-b") != ipam.ula_subnet("other")
    assert int(ula.network_address) & ((1 << 64) - 1) == 0


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("8080:80", PortRequest(8080, 80, Proto.TCP, None)),
        ("5353:53/udp", PortRequest(5353, 53, Proto.UDP, None)),
        ("127.0.0.1:8080:80", PortRequest(8080, 80, Proto.TCP, IPv4Address("127.0.0.1"))),
        ("0.0.0.0:8080:80/TCP", PortRequest(8080, 80, Proto.TCP, None)),
    ],
)
def test_parse_publish(spec: str, want: PortRequest) -> None:
    assert parse_publish(spec) == want


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("80", "is not HOSTPORT:CONTAINERPORT"),
        ("0:80", "not a port number"),
        ("8080:70000", "not a port number"),
        ("8080:80/sctp", "unknown protocol"),
        ("host:8080:80", "not an IPv4 address"),
        ("1:2:3:4", "is not HOSTPORT"),
    ],
)
def test_parse_publish_refuses(spec: str, says: str) -> None:
    with pytest.raises(InvalidPort, match=says):
        parse_publish(spec)


def test_port_conflicts_name_the_holder() -> None:
    web = PublishedPort.bind(parse_publish("8080:80"), IPv4Address("10.77.0.10"), "richc0", "web")
    with pytest.raises(PortConflict, match="published by web") as info:
        check_conflicts([web], [parse_publish("127.0.0.1:8080:81")])
    assert info.value.holder == "web"
    # Another protocol, or two distinct host addresses, do not clash.
    check_conflicts([web], [parse_publish("8080:80/udp")])
    lo = PublishedPort.bind(parse_publish("127.0.0.1:9000:80"), IPv4Address("10.77.0.10"), "b", "x")
    check_conflicts([lo], [parse_publish("127.0.0.2:9000:80")])
    with pytest.raises(PortConflict, match="this container"):
        check_conflicts([], [parse_publish("9000:80"), parse_publish("9000:81")])


PROC_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   2: 0100007F:0035 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0
"""
PROC_TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A
"""


def test_parse_proc_net() -> None:
    assert parse_proc_net(PROC_TCP, Proto.TCP) == [
        (IPv4Address("0.0.0.0"), 8080),
        (IPv4Address("127.0.0.1"), 53),
    ]
    assert parse_proc_net(PROC_TCP6, Proto.TCP) == [(IPv6Address("::1"), 22)]
    # For UDP every bound socket counts, whatever its state.
    assert len(parse_proc_net(PROC_TCP, Proto.UDP)) == 3


def test_a_port_a_host_process_listens_on_is_refused() -> None:
    live = {Proto.TCP: {8080: ["0.0.0.0"], 53: ["127.0.0.1"]}, Proto.UDP: {}}
    with pytest.raises(PortConflict, match=r"listening on 0\.0\.0\.0:8080"):
        check_host_ports([parse_publish("192.0.2.2:8080:80")], live)
    with pytest.raises(PortConflict, match=r"127\.0\.0\.1:53"):
        check_host_ports([parse_publish("53:53")], live)
    # Another address than the one bound, or another protocol, is free.
    check_host_ports([parse_publish("192.0.2.2:53:53"), parse_publish("8080:80/udp")], live)
