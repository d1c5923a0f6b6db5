"""Container NICs as veth pairs on a bridge.

runc: ``attach`` makes the pair itself with the container side created straight inside the
container's network namespace (found by its init's pid) under its final name ``ethN``, so
no name in the host namespace is ever taken by it, then configures it from the inside.
LXC makes the pair itself from its config; ``lxc_net_keys`` renders those keys. Either
way the host side is named by ``ipam.veth_name`` so that a crash leaves a link whose name
richc can derive again and delete (``detach``)."""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from netctl.errors import LinkError
from netctl.ipam import veth_name
from netctl.netlink import doing, iproute, lookup, netlink_errno, shares_our_netns

MARK = "richc:"


@dataclass(frozen=True)
class NicSpec:
    """One NIC of a container. ``address`` None leaves the address to the guest (DHCP from
    the network's dnsmasq, which knows the MAC); ``gateway`` is the default route's."""

    container: str
    index: int
    bridge: str
    mac: str
    address: IPv4Interface | None = None
    gateway: IPv4Address | None = None
    mtu: int | None = None
    veth: str | None = None  # the host side's name when the caller derives its own

    @property
    def host_name(self) -> str:
        return self.veth or veth_name(self.container, self.index)

    @property
    def ifname(self) -> str:
        return f"eth{self.index}"


def attach(nic: NicSpec, pid: int) -> None:
    """Give the network namespace of process *pid* the NIC *nic*: a veth pair whose host
    side is on the bridge and up, whose container side is ``ethN`` with the NIC's MAC,
    address and default route, up with ``lo``. A host side left by an earlier crashed
    attach is deleted first; on failure the new pair is deleted again. Refuses a process
    in the caller's own namespace: that would configure the host, not a container."""
    if shares_our_netns(pid):
        raise LinkError(
            f"process {pid} is in the host's network namespace, not a container's of its own",
            hint="give the pid of the container's init, started with a new network namespace",
        )
    detach_name(nic.host_name)
    with iproute() as ipr:
        bridge = lookup(ipr, nic.bridge)
        if bridge is None:
            raise LinkError(
                f"bridge {nic.bridge} does not exist", hint="bring the network up first"
            )
        peer: dict[str, object] = {"ifname": nic.ifname, "net_ns_pid": pid, "address": nic.mac}
        mtu = {"mtu": nic.mtu} if nic.mtu else {}
        with doing(f"create veth {nic.host_name} for {nic.container} {nic.ifname}"):
            ipr.link("add", ifname=nic.host_name, kind="veth", peer={**peer, **mtu}, **mtu)
        try:
            host = lookup(ipr, nic.host_name)
            if host is None:
                raise LinkError(f"veth {nic.host_name} vanished right after it was made")
            with doing(f"put {nic.host_name} on bridge {nic.bridge}"):
                ipr.link(
                    "set",
                    index=host,
                    master=bridge,
                    ifalias=f"{MARK}{nic.container}/{nic.index}",
                    state="up",
                )
            _configure_inside(nic, pid)
        except BaseException:
            stale = lookup(ipr, nic.host_name)
            if stale is not None:
                with doing(f"delete veth {nic.host_name}", tolerate=(errno.ENODEV,)):
                    ipr.link("del", index=stale)
            raise


def _configure_inside(nic: NicSpec, pid: int) -> None:
    with iproute(pid) as ns:
        index = lookup(ns, nic.ifname)
        if index is None:
            raise LinkError(f"{nic.ifname} did not appear in the namespace of process {pid}")
        loopback = lookup(ns, "lo")
        if loopback is not None:
            with doing("bring up lo in the container"):
                ns.link("set", index=loopback, state="up")
        if nic.address is not None:
            with doing(f"add {nic.address} to {nic.ifname}", tolerate=(errno.EEXIST,)):
                ns.addr(
                    "add",
                    index=index,
                    address=str(nic.address.ip),
                    prefixlen=nic.address.network.prefixlen,
                )
        with doing(f"bring up {nic.ifname} in the container"):
            ns.link("set", index=index, state="up")
        if nic.address is not None and nic.gateway is not None:
            with doing(f"add the default route via {nic.gateway}", tolerate=(errno.EEXIST,)):
                ns.route("add", dst="0.0.0.0/0", gateway=str(nic.gateway), oif=index)


def detach(container: str, index: int) -> bool:
    """Delete NIC *index* of *container* by its host side (the peer goes with it); False
    when it was already gone. Only a veth is deleted: a link of that name of another kind
    is none of ours."""
    return detach_name(veth_name(container, index))


def detach_name(name: str) -> bool:
    """:func:`detach` by the host side's name."""
    if not Path(f"/sys/class/net/{name}").exists():
        return False  # the common case, without loading netlink
    with iproute() as ipr:
        link_index = lookup(ipr, name)
        if link_index is None:
            return False
        try:
            link = ipr.get_links(link_index)[0]
        except Exception as err:
            # The container's namespace just died and took the pair with it.
            if netlink_errno(err) == errno.ENODEV:
                return False
            raise
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        if kind != "veth":
            raise LinkError(f"link {name} is a {kind or 'device'}, not richc's veth; leaving it")
        with doing(f"delete veth {name}", tolerate=(errno.ENODEV,)):
            ipr.link("del", index=link_index)
    return True


def lxc_net_keys(nics: Iterable[NicSpec]) -> list[tuple[str, str]]:
    """The ``lxc.net.N.*`` keys that make LXC create the same NICs itself (the index of
    each NIC is its N)."""
    keys: list[tuple[str, str]] = []
    for nic in nics:
        prefix = f"lxc.net.{nic.index}"
        keys += [
            (f"{prefix}.type", "veth"),
            (f"{prefix}.link", nic.bridge),
            (f"{prefix}.flags", "up"),
            (f"{prefix}.name", nic.ifname),
            (f"{prefix}.hwaddr", nic.mac),
            (f"{prefix}.veth.pair", nic.host_name),
        ]
        if nic.mtu:
            keys.append((f"{prefix}.mtu", str(nic.mtu)))
        if nic.address is not None:
            keys.append((f"{prefix}.ipv4.address", str(nic.address)))
            if nic.gateway is not None:
                keys.append((f"{prefix}.ipv4.gateway", str(nic.gateway)))
    return keys


def richc_veths() -> dict[str, str]:
    """Host-side veths ``attach`` made, name -> ``CONTAINER/INDEX`` (from their mark), for
    ``doctor`` and for finding what a crash left. LXC's veths carry no mark: find those
    by name with ``ipam.veth_name``."""
    found = {}
    with iproute() as ipr:
        for link in ipr.get_links():
            alias = link.get_attr("IFLA_IFALIAS") or ""
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            if kind == "veth" and alias.startswith(MARK):
                found[str(link.get_attr("IFLA_IFNAME"))] = alias[len(MARK) :]
    return found
