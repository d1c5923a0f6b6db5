"""The facade richc uses: a managed network's definition, and idempotent operations to bring
it up, take it down, publish its containers' names and rebuild richc's nftables table.
Every operation checks before it acts, so re-running one after a crash finishes the job."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Interface, IPv6Network
from pathlib import Path
from typing import Any

from netctl import bridge, dnsmasq, hosts, ipam, netlink, nft, sysctl
from netctl.errors import InvalidSubnet, NetError, SubnetOverlap
from netctl.guestcfg import StaticAddress
from netctl.ports import PublishedPort


@dataclass(frozen=True)
class NetworkDef:
    """A managed network. ``ipv6`` is its ULA /64 or None; ``dhcp_range`` the dynamic pool."""

    name: str
    bridge: str
    subnet: IPv4Network
    gateway: IPv4Address
    dhcp_range: tuple[IPv4Address, IPv4Address]
    nat: bool = True
    ipv6: IPv6Network | None = None
    domain: str | None = None

    @classmethod
    def make(
        cls,
        name: str,
        subnet: str | IPv4Network,
        *,
        nat: bool = True,
        ipv6: str = "none",
        bridge: str | None = None,
        domain: str | None = None,
        seed: str = "",
    ) -> NetworkDef:
        """Validate and derive: gateway = first host, DHCP pool = upper half, bridge named
        after the network, ``ipv6`` "auto" (a ULA /64 from the name and *seed*), "none" or
        an explicit /64."""
        net = subnet if isinstance(subnet, IPv4Network) else ipam.parse_subnet(subnet)
        if ipv6 == "auto":
            v6: IPv6Network | None = ipam.ula_subnet(name, seed)
        elif ipv6 in ("none", ""):
            v6 = None
        else:
            try:
                v6 = IPv6Network(ipv6)
            except ValueError:
                raise InvalidSubnet(
                    f"--ipv6 {ipv6!r} is neither auto, none nor an IPv6 network"
                ) from None
        return cls(
            name=name,
            bridge=bridge or ipam.bridge_name(name),
            subnet=net,
            gateway=ipam.gateway(net),
            dhcp_range=ipam.dhcp_range(net),
            nat=nat,
            ipv6=v6,
            domain=domain,
        )

    @property
    def gateway6(self) -> IPv6Interface | None:
        if self.ipv6 is None:
            return None
        return IPv6Interface(f"{self.ipv6.network_address + 1}/{self.ipv6.prefixlen}")

    @property
    def rule_net(self) -> nft.RuleNet:
        return nft.RuleNet(self.bridge, self.subnet, self.nat, self.ipv6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bridge": self.bridge,
            "subnet": str(self.subnet),
            "gateway": str(self.gateway),
            "dhcp_range": [str(a) for a in self.dhcp_range],
            "nat": self.nat,
            "ipv6": str(self.ipv6) if self.ipv6 else None,
            "domain": self.domain,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkDef:
        low, high = data["dhcp_range"]
        return cls(
            name=data["name"],
            bridge=data["bridge"],
            subnet=IPv4Network(data["subnet"]),
            gateway=IPv4Address(data["gateway"]),
            dhcp_range=(IPv4Address(low), IPv4Address(high)),
            nat=bool(data.get("nat", True)),
            ipv6=IPv6Network(data["ipv6"]) if data.get("ipv6") else None,
            domain=data.get("domain"),
        )


@dataclass(frozen=True)
class NetworkStatus:
    bridge_exists: bool
    bridge_ours: bool
    dnsmasq: dnsmasq.Status
    ports: tuple[str, ...]
    ip_forward: bool


def paths(net: NetworkDef, state_dir: Path, run_dir: Path) -> dnsmasq.Paths:
    """The network's dnsmasq files: *state_dir* is the network's own directory
    (ROOT/var/lib/richc/networks/NAME), *run_dir* the shared pid directory."""
    return dnsmasq.Paths.under(Path(state_dir), Path(run_dir), net.name)


def check_new(net: NetworkDef, others: Iterable[NetworkDef]) -> None:
    """Refuse a network whose name, bridge or subnet clashes with *others* or whose subnet
    overlaps an address or route of the host (SubnetOverlap / NetError). Reads the host."""
    others = [o for o in others if o.name != net.name]
    for other in others:
        if other.bridge == net.bridge:
            raise NetError(
                f"bridge {net.bridge} already belongs to network {other.name!r}",
                hint="choose another network name",
            )
    ipam.check_overlap(net.subnet, {o.name: o.subnet for o in others})
    ipam.check_host_overlap(net.subnet, bridge.host_networks(), own_link=net.bridge)


def up(net: NetworkDef, state_dir: Path, run_dir: Path, *, user: str | None = None) -> int:
    """Bring *net* up: bridge with its gateway address, forwarding, dnsmasq serving it
    (restarted when its conf changed). Returns dnsmasq's pid. Idempotent."""
    try:
        ipam.check_host_overlap(net.subnet, bridge.host_networks(), own_link=net.bridge)
    except SubnetOverlap as err:
        raise SubnetOverlap(
            f"network {net.name!r}: {err.message}", other=err.other, hint=err.hint
        ) from None
    sysctl.enable_ip_forward()
    files = paths(net, state_dir, run_dir)
    if bridge.link_mark(net.bridge) is None:
        # A dnsmasq still running (after a crash, or the bridge deleted by hand) is bound to
        # the old link's index and would serve nothing on the new bridge.
        dnsmasq.stop(files)
    bridge.ensure_bridge(
        net.bridge, ipam.gateway_interface(net.subnet), network=net.name, ipv6=net.gateway6
    )
    user = user or dnsmasq.default_user()
    conf = dnsmasq.render_conf(
        bridge=net.bridge,
        subnet=net.subnet,
        gateway=net.gateway,
        dhcp_range=net.dhcp_range,
        paths=files,
        servers=dnsmasq.host_resolvers(),
        domain=net.domain,
        user=user,
        subnet6=net.ipv6,
    )
    if dnsmasq.write_if_changed(files.conf, conf):
        dnsmasq.stop(files)
    return dnsmasq.start(files, user=user)


def down(net: NetworkDef, state_dir: Path, run_dir: Path, *, purge: bool = False) -> None:
    """Stop *net*'s dnsmasq and delete its bridge (only if richc's mark is on it); with
    *purge*, also its files (leases included). Its rules go with the next apply_rules
    that no longer lists it. Idempotent."""
    files = paths(net, state_dir, run_dir)
    dnsmasq.stop(files)
    bridge.remove_bridge(net.bridge, network=net.name)
    if purge:
        shutil.rmtree(state_dir, ignore_errors=True)


def set_hosts(
    net: NetworkDef,
    entries: Mapping[str, tuple[IPv4Address | None, str | None]],
    state_dir: Path,
    run_dir: Path,
) -> bool:
    """:func:`netctl.hosts.set_hosts` for *net*."""
    return hosts.set_hosts(net.name, entries, state_dir, run_dir)


def release(net: NetworkDef, macs: Iterable[str], state_dir: Path, run_dir: Path) -> bool:
    """:func:`netctl.hosts.release` for *net*."""
    return hosts.release(net.name, macs, state_dir, run_dir)


def taken_addresses(
    net: NetworkDef, entries: Mapping[str, tuple[IPv4Address | None, str | None]], state_dir: Path
) -> dict[IPv4Address, str]:
    """Address -> holder on *net*: static ones from *entries* and live DHCP leases (holder
    named by the entry with that MAC, else the lease's hostname)."""
    taken = {addr: name for name, (addr, _) in entries.items() if addr is not None}
    by_mac = {mac: name for name, (_, mac) in entries.items() if mac}
    for lease in dnsmasq.read_leases(paths(net, state_dir, Path("/nonexistent"))):
        holder = by_mac.get(lease.mac) or lease.hostname or f"a DHCP lease of {lease.mac}"
        taken.setdefault(lease.address, holder)
    return taken


def _wants_localnet(ports: Sequence[PublishedPort], bridge_name: str) -> bool:
    return any(
        p.bridge == bridge_name and (p.host_ip is None or p.host_ip in nft.LOOPBACK) for p in ports
    )


def apply_rules(
    networks: Sequence[NetworkDef], ports: Sequence[PublishedPort], *, table: str = nft.TABLE
) -> None:
    """Rebuild richc's nftables table for *networks* and *ports* in one transaction, then
    set ``route_localnet`` on each existing bridge that has a port published on the host's
    loopback (and clear it elsewhere). The rules first: their guard chain must stand
    before route_localnet lets 127.0.0.0/8 through the bridge."""
    nft.apply([n.rule_net for n in networks], ports, table)
    # sysfs, not netlink: apply_rules runs at every start with ports, and pyroute2 costs
    # 100-250 ms to import.
    present = [n.bridge for n in networks if Path(f"/sys/class/net/{n.bridge}").exists()]
    for name in present:
        sysctl.set_link(name, "route_localnet", "1" if _wants_localnet(ports, name) else "0")


def status(net: NetworkDef, state_dir: Path, run_dir: Path) -> NetworkStatus:
    mark = bridge.link_mark(net.bridge)
    return NetworkStatus(
        bridge_exists=mark is not None,
        bridge_ours=mark == bridge.mark_for(net.name),
        dnsmasq=dnsmasq.status(paths(net, state_dir, run_dir)),
        ports=tuple(bridge.bridge_ports(net.bridge)),
        ip_forward=sysctl.ip_forward(),
    )


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None


def host_checks(table: str = nft.TABLE) -> list[Check]:
    """What ``doctor`` reports: forwarding, nftables (and other tables' forward drops),
    dnsmasq, pyroute2."""
    checks = [
        Check(
            "ip forwarding",
            sysctl.ip_forward(),
            "on" if sysctl.ip_forward() else "off (turned on when a network comes up)",
        )
    ]
    try:
        nft.check_available()
        blockers = nft.forward_blockers(table=table)
        checks.append(Check("nftables", True, "works"))
        checks.append(
            Check(
                "forwarding not blocked",
                not blockers,
                "no other table drops forwarded traffic"
                if not blockers
                else "dropped by policy in: " + ", ".join(blockers),
                None
                if not blockers
                else "another tool (e.g. docker) drops forwarded packets; allow the richc "
                "bridges there (docker: iptables -I DOCKER-USER -i BRIDGE -j ACCEPT and "
                "iptables -I DOCKER-USER -o BRIDGE -j ACCEPT)",
            )
        )
    except NetError as err:
        checks.append(Check("nftables", False, err.message, err.hint))
    exe = dnsmasq.dnsmasq_path()
    checks.append(
        Check(
            "dnsmasq",
            exe is not None,
            exe or "not installed",
            None if exe else "apt-get install dnsmasq-base",
        )
    )
    if netlink.available():
        checks.append(Check("pyroute2", True, "importable"))
    else:
        checks.append(Check("pyroute2", False, "not installed", "pip install pyroute2"))
    return checks


@dataclass(frozen=True)
class KeepIp:
    """Where a migrated VM's own static address can live: ``network`` is the managed
    network to put it on (None when there is none), ``message`` what to tell the user."""

    address: StaticAddress
    network: NetworkDef | None
    message: str


def plan_keep_ip(
    address: StaticAddress,
    networks: Sequence[NetworkDef],
    host: Iterable[ipam.HostNet] = (),
) -> KeepIp:
    """Match the VM's address (from ``guestcfg.read_static``) with a managed network whose
    subnet holds it; otherwise say what the operator can do: create a network for that
    subnet (when the VM's gateway is the subnet's first address, as netctl's are) or give
    the bridge of the VM's own LAN (``--net bridge:BR``). *host* lists the host's networks
    (``bridge.host_networks()``) to recognise a LAN the host is already on."""
    where = f"{address.interface} ({address.iface} in {address.source})"
    for net in networks:
        if address.address not in net.subnet:
            continue
        try:
            ipam.check_static(address.address, net.subnet)
        except NetError as err:
            return KeepIp(
                address,
                None,
                f"the VM's address {where} cannot be kept on network {net.name!r}: {err.message}",
            )
        note = ""
        if address.gateway is not None and address.gateway != net.gateway:
            note = (
                f"; its default route becomes {net.gateway}, the network's gateway, instead "
                f"of {address.gateway}"
            )
        return KeepIp(address, net, f"keeping {where} on network {net.name!r}{note}")
    lan = address.network
    on_host = [h for h in host if h.network.prefixlen and h.network.overlaps(lan)]
    if on_host:
        link = on_host[0].link or "?"
        return KeepIp(
            address,
            None,
            f"the VM's address {where} is on a LAN the host has ({on_host[0].where}): "
            f"attach the container to that LAN's bridge with --net bridge:BR (if {link} "
            "is a bridge, --net bridge:" + link + ")",
        )
    if address.gateway is None or address.gateway == ipam.gateway(lan):
        return KeepIp(
            address,
            None,
            f"no managed network holds {where}: create one with "
            f"`richc network create NAME --subnet {lan}`, or give --net bridge:BR",
        )
    return KeepIp(
        address,
        None,
        f"no managed network holds {where}, and its gateway {address.gateway} is not the "
        f"first address of {lan} as a managed network's would be: attach it to the bridge "
        "of its old LAN with --net bridge:BR",
    )
