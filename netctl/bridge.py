"""Managed bridges: made, addressed and brought up idempotently, marked as richc's with the
link alias (IFLA_IFALIAS ``richc:NETWORK``) so that removal never touches a bridge another
tool (lxc-net, docker, libvirt, the operator) made. Also what the host already uses, for
the overlap check."""

from __future__ import annotations

import errno
import hashlib
import socket
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface, ip_interface, ip_network

from netctl import sysctl
from netctl.errors import LinkError, NotOurs
from netctl.ipam import HostNet
from netctl.netlink import doing, iproute, lookup

MARK = "richc:"
# Kernel flag: the address needs no duplicate address detection (it is ours by fiat).
IFA_F_NODAD = 0x02
RT_TABLE_MAIN = 254


def mark_for(network: str) -> str:
    return MARK + network


def bridge_mac(network: str) -> str:
    """A fixed MAC for the bridge. Without one the kernel gives a bridge the lowest MAC of
    its ports, so it would change as containers come and go and leave stale gateway entries
    in the containers' ARP caches."""
    rest = hashlib.sha256(f"bridge\0{network}".encode()).digest()[:5]
    return ":".join(f"{b:02x}" for b in (0x02, *rest))


def link_mark(name: str) -> str | None:
    """The alias of link *name* ("" when it has none), or None when there is no such link."""
    with iproute() as ipr:
        index = lookup(ipr, name)
        if index is None:
            return None
        alias = ipr.get_links(index)[0].get_attr("IFLA_IFALIAS")
        return str(alias or "")


def managed_bridges() -> dict[str, str]:
    """Bridge name -> network name, for every bridge carrying netctl's mark."""
    found = {}
    with iproute() as ipr:
        for link in ipr.get_links():
            alias = link.get_attr("IFLA_IFALIAS") or ""
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            if kind == "bridge" and alias.startswith(MARK):
                found[link.get_attr("IFLA_IFNAME")] = alias[len(MARK) :]
    return found


def _check_ours(name: str, alias: str, network: str) -> None:
    if alias != mark_for(network):
        owner = f"network {alias[len(MARK) :]!r}" if alias.startswith(MARK) else "another tool"
        raise NotOurs(
            f"link {name} exists and was not made by richc for network {network!r} "
            f"(it belongs to {owner})",
            hint="choose another bridge name for the network, or remove that link yourself",
        )


def _addresses(ipr: object, index: int, family: int) -> set[str]:
    addrs = ipr.get_addr(family=family, index=index)  # type: ignore[attr-defined]
    return {
        f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
        for a in addrs
        if a["scope"] == 0  # global only: the IPv6 link-local address is the kernel's
    }


def ensure_bridge(
    name: str,
    gateway: IPv4Interface,
    *,
    network: str,
    ipv6: IPv6Interface | None = None,
) -> int:
    """Make bridge *name* for *network* exist, marked, with exactly *gateway* (and *ipv6*)
    as its addresses, up and forwarding; return its index. Safe to run again at any point,
    e.g. after a crash half-way: every step checks before it acts. Refuses (NotOurs) a link
    of that name that is not this network's bridge."""
    with iproute() as ipr:
        index = lookup(ipr, name)
        if index is None:
            with doing(f"create bridge {name}", tolerate=(errno.EEXIST,)):
                ipr.link("add", ifname=name, kind="bridge", address=bridge_mac(network))
            index = lookup(ipr, name)
            if index is None:
                raise LinkError(f"bridge {name} vanished right after it was made")
            with doing(f"mark bridge {name}"):
                ipr.link("set", index=index, ifalias=mark_for(network))
        link = ipr.get_links(index)[0]
        _check_ours(name, link.get_attr("IFLA_IFALIAS") or "", network)
        wanted = {socket.AF_INET: {str(gateway)}, socket.AF_INET6: set()}
        if ipv6 is not None:
            wanted[socket.AF_INET6] = {str(ipv6)}
        for family, want in wanted.items():
            have = _addresses(ipr, index, family)
            for stale in have - want:
                iface = ip_interface(stale)
                with doing(
                    f"remove old address {stale} from {name}", tolerate=(errno.EADDRNOTAVAIL,)
                ):
                    ipr.addr(
                        "del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen
                    )
            for new in want - have:
                iface = ip_interface(new)
                extra = {"flags": IFA_F_NODAD} if family == socket.AF_INET6 else {}
                with doing(f"add address {new} to {name}", tolerate=(errno.EEXIST,)):
                    ipr.addr(
                        "add",
                        index=index,
                        address=str(iface.ip),
                        prefixlen=iface.network.prefixlen,
                        **extra,
                    )
        with doing(f"bring up bridge {name}"):
            ipr.link("set", index=index, state="up")
    sysctl.set_link(name, "forwarding", "1")
    return int(index)


def remove_bridge(name: str, *, network: str | None = None) -> bool:
    """Delete bridge *name* if it carries netctl's mark (for *network*, when given); False
    when there was no such link. NotOurs for a link without the mark: never another tool's."""
    with iproute() as ipr:
        index = lookup(ipr, name)
        if index is None:
            return False
        alias = ipr.get_links(index)[0].get_attr("IFLA_IFALIAS") or ""
        if network is not None:
            _check_ours(name, alias, network)
        elif not alias.startswith(MARK):
            raise NotOurs(f"link {name} was not made by richc; not removing it")
        with doing(f"delete bridge {name}", tolerate=(errno.ENODEV,)):
            ipr.link("del", index=index)
    return True


def bridge_ports(name: str) -> list[str]:
    """The names of the links enslaved to bridge *name* (empty when it does not exist)."""
    with iproute() as ipr:
        index = lookup(ipr, name)
        if index is None:
            return []
        return sorted(
            str(link.get_attr("IFLA_IFNAME"))
            for link in ipr.get_links()
            if link.get_attr("IFLA_MASTER") == index
        )


def host_networks() -> list[HostNet]:
    """The IPv4 networks the host's links are on and those of its main routing table."""
    found = []
    with iproute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for addr in ipr.get_addr(family=socket.AF_INET):
            link = names.get(addr["index"], "?")
            iface = IPv4Interface(f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}")
            found.append(HostNet(iface.network, f"address {iface} on {link}", link))
        for route in ipr.get_routes(family=socket.AF_INET, table=RT_TABLE_MAIN):
            dst = route.get_attr("RTA_DST") or "0.0.0.0"
            net = ip_network(f"{dst}/{route['dst_len']}")
            if not isinstance(net, IPv4Network) or net.prefixlen == 0:
                continue
            link = names.get(route.get_attr("RTA_OIF"), "")
            where = f"route {net}" + (f" via {link}" if link else "")
            found.append(HostNet(net, where, link))
    return found
