"""Address planning for managed networks, pure: subnets, gateways, DHCP ranges, overlaps,
static addresses, and the names and MACs derived from a container's name.

Everything here is IPv4 except the ULA prefix derived for ``--ipv6 auto``."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Network

from netctl.errors import AddressConflict, InvalidAddress, InvalidSubnet, SubnetOverlap

# A bridge needs its gateway and at least one address for a NIC: /30 is the smallest such
# network (/31 and /32 have no room for both once network and broadcast are set aside).
SMALLEST_PREFIX = 30
# Larger than a /8 is surely a typo (10.0.0.0/4 would swallow most of the address space).
LARGEST_PREFIX = 8

# Linux limits interface names to IFNAMSIZ-1 = 15 characters.
IFNAME_MAX = 15


@dataclass(frozen=True)
class HostNet:
    """A network the host already uses: an address on a link or a route, and where it is
    (e.g. ``address 192.0.2.2/24 on eth0`` or ``route 10.8.0.0/16 via eth1``)."""

    network: IPv4Network
    where: str
    link: str = ""


def parse_subnet(text: str) -> IPv4Network:
    """The IPv4 network *text* names (``10.77.0.0/24``), or InvalidSubnet saying why not."""
    text = text.strip()
    if "/" not in text:
        raise InvalidSubnet(
            f"subnet {text!r} has no prefix length",
            hint="give it in CIDR form, e.g. 10.77.0.0/24",
        )
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as err:
        raise InvalidSubnet(
            f"subnet {text!r} is not a valid CIDR: {err}", hint="e.g. 10.77.0.0/24"
        ) from None
    if not isinstance(net, IPv4Network):
        raise InvalidSubnet(
            f"subnet {text!r} is IPv6; --subnet takes an IPv4 network",
            hint="IPv6 is added with --ipv6 auto",
        )
    if ipaddress.ip_interface(text).ip != net.network_address:
        raise InvalidSubnet(
            f"subnet {text!r} has host bits set",
            hint=f"did you mean {net}?",
        )
    if net.prefixlen > SMALLEST_PREFIX:
        raise InvalidSubnet(
            f"subnet {net} is too small: a network needs a gateway and room for containers",
            hint=f"use a prefix of /{SMALLEST_PREFIX} or shorter, e.g. /24",
        )
    if net.prefixlen < LARGEST_PREFIX:
        raise InvalidSubnet(
            f"subnet {net} is too large", hint=f"use a prefix of /{LARGEST_PREFIX} or longer"
        )
    if net.is_loopback or net.is_multicast or net.is_link_local or net.is_reserved:
        raise InvalidSubnet(
            f"subnet {net} is a special-purpose range (loopback, multicast, link-local or "
            "reserved) and cannot hold a bridge",
            hint="use a private range such as 10.77.0.0/24",
        )
    return net


def gateway(subnet: IPv4Network) -> IPv4Address:
    """The bridge's own address: the first host of the subnet."""
    return subnet.network_address + 1


def gateway_interface(subnet: IPv4Network) -> IPv4Interface:
    """The gateway with the subnet's prefix, as it is set on the bridge."""
    return IPv4Interface(f"{gateway(subnet)}/{subnet.prefixlen}")


def dhcp_range(subnet: IPv4Network) -> tuple[IPv4Address, IPv4Address]:
    """The dynamic DHCP pool: the upper half of the subnet up to the last host. The lower
    half is left to static addresses (``--ip``) so a static one rarely collides with a lease
    handed out before it was asked for."""
    first = max(gateway(subnet) + 1, subnet.network_address + subnet.num_addresses // 2)
    return first, subnet.broadcast_address - 1


def check_overlap(subnet: IPv4Network, others: Mapping[str, IPv4Network]) -> None:
    """SubnetOverlap naming the first of *others* (name -> subnet) that *subnet* overlaps."""
    for name, other in sorted(others.items()):
        if subnet.overlaps(other):
            raise SubnetOverlap(
                f"subnet {subnet} overlaps network {name!r} ({other})",
                other=name,
                hint="choose another --subnet",
            )


def check_host_overlap(subnet: IPv4Network, host: Iterable[HostNet], *, own_link: str = "") -> None:
    """SubnetOverlap when *subnet* overlaps an address or route the host has. Default
    routes are ignored (everything overlaps 0.0.0.0/0) and so is *own_link*, the network's
    own bridge, so that bringing an existing network up again is not refused."""
    for item in host:
        if item.network.prefixlen == 0 or (own_link and item.link == own_link):
            continue
        if subnet.overlaps(item.network):
            raise SubnetOverlap(
                f"subnet {subnet} overlaps the host's {item.where}",
                other=item.where,
                hint="choose a --subnet the host does not use yet",
            )


# A picked subnet is a /20: 4094 hosts, of which the static half (from .10) holds 2038
# containers. A /24 held 118, which a host reaches (bench_density stopped at the 119th).
PICKED_PREFIX = 20


def pick_subnet(
    taken: Iterable[IPv4Network], candidates: Iterable[IPv4Network] | None = None
) -> IPv4Network:
    """The first candidate (default 10.77.0.0/20, 10.77.16.0/20 ... 10.127.240.0/20) that
    overlaps none of *taken*; for a network made without --subnet (richc0 on first use)."""
    taken = list(taken)
    step = 1 << (24 - PICKED_PREFIX)
    pool = candidates or (
        IPv4Network(f"10.{n}.{m}.0/{PICKED_PREFIX}")
        for n in range(77, 128)
        for m in range(0, 256, step)
    )
    for candidate in pool:
        if not any(candidate.overlaps(t) for t in taken if t.prefixlen > 0):
            return candidate
    raise SubnetOverlap(
        "no free subnet left among the candidates",
        other="",
        hint="create the network with an explicit --subnet",
    )


def parse_address(text: str) -> IPv4Address:
    try:
        return IPv4Address(text.strip())
    except ValueError:
        raise InvalidAddress(f"{text!r} is not an IPv4 address", hint="e.g. 10.77.0.10") from None


def check_static(
    address: str | IPv4Address,
    subnet: IPv4Network,
    taken: Mapping[IPv4Address, str] | Mapping[str, str] | None = None,
) -> IPv4Address:
    """Validate a static address for a NIC on *subnet*: inside it, not its network,
    broadcast or gateway address, and not in *taken* (address -> holder name, keys as
    IPv4Address or str), whose holder the error names."""
    addr = address if isinstance(address, IPv4Address) else parse_address(address)
    if addr not in subnet:
        raise InvalidAddress(
            f"address {addr} is outside the network's subnet {subnet}",
            hint=f"give one from {gateway(subnet) + 1} to {subnet.broadcast_address - 1}",
        )
    if addr == subnet.network_address:
        raise InvalidAddress(f"address {addr} is the network address of {subnet}")
    if addr == subnet.broadcast_address:
        raise InvalidAddress(f"address {addr} is the broadcast address of {subnet}")
    if addr == gateway(subnet):
        raise InvalidAddress(f"address {addr} is the gateway (the bridge's own address)")
    for key, holder in (taken or {}).items():
        if IPv4Address(str(key)) == addr:
            raise AddressConflict(
                f"address {addr} is taken by {holder}",
                holder=holder,
                hint="choose another --ip, or leave it out to get one by DHCP",
            )
    return addr


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode()).digest()


def mac_address(container: str, index: int) -> str:
    """A stable MAC for NIC *index* of *container*: locally administered, unicast (first
    octet 0x02), the rest from a hash, so re-creating the NIC gives the same MAC and the
    DHCP server the same lease."""
    rest = _digest("mac", container, str(index))[:5]
    return ":".join(f"{b:02x}" for b in (0x02, *rest))


_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def parse_mac(text: str) -> str:
    """*text* as a lower-case colon MAC, refusing multicast and all-zero addresses."""
    mac = text.strip().lower().replace("-", ":")
    if not _MAC.match(mac):
        raise InvalidAddress(f"{text!r} is not a MAC address", hint="e.g. 02:00:00:00:00:01")
    if int(mac[:2], 16) & 1:
        raise InvalidAddress(f"MAC {mac} is a multicast address; a NIC needs a unicast one")
    if mac == "00:00:00:00:00:00":
        raise InvalidAddress("MAC 00:00:00:00:00:00 is not usable")
    return mac


def veth_name(container: str, index: int) -> str:
    """The host side of NIC *index*'s veth pair: ``rc`` + 8 hex digits of a hash of the
    container name and index. Deterministic, so a crashed attach is found and cleaned up
    by name, and short enough for IFNAMSIZ whatever the container is called."""
    return "rc" + _digest("veth", container, str(index)).hex()[:8]


def bridge_name(network: str) -> str:
    """A bridge name for *network*: the name itself when it is a valid interface name,
    otherwise ``rcbr`` + 8 hex digits of its hash."""
    if len(network) <= IFNAME_MAX and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", network):
        return network
    return "rcbr" + _digest("bridge", network).hex()[:8]


def ula_subnet(network: str, seed: str = "") -> IPv6Network:
    """A /64 from an RFC 4193 unique local /48 whose 40-bit global ID is a hash of the
    network name and *seed* (e.g. the host's machine-id, so two hosts differ); subnet ID 0.
    Deterministic, so the network keeps its prefix across restarts."""
    gid = _digest("ula", seed, network)[:5]
    prefix = bytes([0xFD, *gid]) + bytes(10)
    return IPv6Network((prefix, 64))
