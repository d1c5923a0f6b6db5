"""A container's NICs and published ports, as a host resource.

At create (:func:`allocate`, under the networks lock) every NIC gets its MAC, its host-side
veth name and, on a managed network, its address: the one asked for (``--ip``, refused
when outside the subnet or taken, naming the holder) or the first free one of the static
half of the subnet. The network's dnsmasq gets a static lease and a DNS name for it, so a
guest that asks by DHCP gets the same address and the others find it by name. Published
ports are checked against every other container's at create and against the host's
listeners at each start.

Before each start (``prepare``) the networks are brought up where a reboot took them down
and the nftables table is rebuilt with this container's ports; after a stop (``stopped``)
it is rebuilt without them. The runtime makes the veths: LXC from its config, runc through
netlink between ``runc create`` and ``runc start``. ``release`` deletes any veth a crash
left, the dnsmasq entries and the rules.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv4Interface
from typing import TYPE_CHECKING, Any

from richc import netleases, netusers, networks
from richc.config.net import NicConfig
from richc.errors import ConfigError, Conflict, NotFound, RichcError, UsageError
from richc.hostres import BaseResource, Contribution
from richc.spec import Nic
from richc.state import NetRecord, NicRecord, PortRecord

if TYPE_CHECKING:
    from richc import config as cfg
    from richc.context import Context
    from richc.paths import HostPaths
    from richc.state import State
    from richc.store import ContainerDir

log = logging.getLogger("richc.net")


def with_host_default(paths: HostPaths, data: dict[str, Any]) -> dict[str, Any]:
    """*data* with richc.yaml's ``network:`` (``none``, or a network name) as the ``net`` of
    a new container that sets none itself; without that key richc's own default stands
    (the managed ``richc0`` for busybox and debian, none for a VM's tree)."""
    if data.get("net") is not None or not paths.host_config.is_file():
        return data
    import yaml

    try:
        loaded = yaml.safe_load(paths.host_config.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(str(paths.host_config), "", f"cannot read it: {exc}") from None
    value = loaded.get("network") if isinstance(loaded, dict) else None
    if value is None:
        return data
    if not isinstance(value, str):
        raise ConfigError("network", value, "expected none, host or a network name")
    return {**data, "net": value}


def allocate(ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State) -> None:
    """Give *config*'s NICs their MACs, veth names and addresses, and record them in
    *state* (saved) before anything is published; refuse a clash, changing nothing."""
    if config.net.mode != "nics" or not config.net.nics:
        return
    paths = ctx.paths
    with networks.network_lock(paths):
        record = _plan(ctx, cdir.name, config.net.nics, config.net.publish)
        state.net = record
        cdir.save_state(state)
        _publish_names(ctx, record)


def _plan(
    ctx: Context, name: str, nics: tuple[NicConfig, ...], publish: tuple[str, ...]
) -> NetRecord:
    from netctl import ipam
    from netctl.errors import NetError
    from netctl.ports import check_conflicts, parse_publish

    paths = ctx.paths
    owner = networks.nic_id(paths, name)
    records: list[NicRecord] = []
    for index, nic in enumerate(nics):
        key = f"net.nics[{index}]"
        mac = nic.mac or ipam.mac_address(owner, index)
        host_veth = ipam.veth_name(owner, index)
        if nic.network is not None:
            network = networks.ensure(paths, nic.network)
            taken = netleases.taken_addresses(ctx.store, network, exclude=name)
            try:
                if nic.ip is not None:
                    address = ipam.check_static(nic.ip, network.network, taken)
                else:
                    address = netleases.free_address(network, taken)
            except NetError as exc:
                raise ConfigError(f"{key}.ip", nic.ip, exc.message, hint=exc.hint) from None
            prefix = network.network.prefixlen
            records.append(
                NicRecord(
                    index, network.bridge, mac, host_veth, network.name,
                    f"{address}/{prefix}", str(network.gateway),
                )
            )  # fmt: skip
        else:
            assert nic.bridge is not None
            if not networks.link_exists(nic.bridge):
                raise NotFound(
                    f"{key}: there is no bridge {nic.bridge} on this host",
                    hint="make it first (e.g. with your distribution's network config), or use"
                    " a managed network: `richc network create NAME`",
                )
            records.append(NicRecord(index, nic.bridge, mac, host_veth, None, nic.ip, nic.gateway))
    ports = tuple(_port_record(parse_publish(p)) for p in publish)
    if ports:
        existing = [
            p for p in netusers.published(ctx.store, all_containers=True) if p.owner != name
        ]
        try:
            check_conflicts(existing, [parse_publish(p) for p in publish])
        except NetError as exc:
            raise Conflict(exc.message, hint=exc.hint) from None
    return NetRecord(nics=tuple(records), ports=ports)


def _port_record(request: Any) -> PortRecord:
    return PortRecord(
        request.host_port,
        request.container_port,
        str(request.proto),
        str(request.host_ip) if request.host_ip is not None else None,
    )


def _publish_names(ctx: Context, record: NetRecord, *, exclude: str = "") -> None:
    """Rewrite the static leases and names of the record's networks from the store (less
    *exclude*, being removed, whose DHCP leases are dropped too)."""
    from netctl.errors import NetError

    for network_name in sorted({n.network for n in record.nics if n.network}):
        try:
            network = networks.load(ctx.paths, network_name)
            netleases.set_hosts(ctx.paths, ctx.store, network, exclude=exclude)
            if exclude:
                macs = [n.mac for n in record.nics if n.network == network_name]
                netleases.drop_leases(ctx.paths, network, macs)
        except NotFound:
            continue  # removed with --force: nothing to publish to
        except NetError as exc:
            raise networks.wrap(exc) from None


def keep_ip(ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig) -> tuple[NicConfig, ...]:
    """--keep-ip: the NICs that give the migrated VM at *cdir* the static address its own
    network config names (the first one), or a UsageError saying which bridge to give."""
    import yaml

    from netctl import bridge as nbridge
    from netctl.guestcfg import read_static
    from netctl.network import plan_keep_ip

    found = read_static(cdir.rootfs, load_yaml=yaml.safe_load)
    if not found.static:
        why = "; ".join(f"{s.source}: {s.reason}" for s in found.skipped) or "none found"
        raise UsageError(
            f"--keep-ip: the VM's network config has no static IPv4 address ({why})",
            hint="drop --keep-ip; the container gets an address on --net NETWORK instead",
        )
    address = found.static[0]
    nics = config.net.nics
    if nics and nics[0].bridge is not None:
        # The operator named the VM's own LAN: the address goes there as the VM had it.
        first = NicConfig(
            bridge=nics[0].bridge,
            ip=f"{address.address}/{address.prefix}",
            gateway=str(address.gateway) if address.gateway else None,
            mac=nics[0].mac,
        )
        return (first, *nics[1:])
    defs = [n.definition() for n in networks.all_networks(ctx.paths)]
    plan = plan_keep_ip(address, defs, nbridge.host_networks())
    if plan.network is None:
        raise UsageError(f"--keep-ip: {plan.message}")
    log.info("%s", plan.message)
    # The kept address is eth0's, on the network that holds it, in place of a first NIC
    # the config (or richc's default) put on a managed network.
    first = NicConfig(network=plan.network.name, ip=str(address.address))
    return (first, *nics[1:])


def resolv_conf(cdir: ContainerDir, state: State) -> None:
    """A fresh rootfs (busybox, debian) on a managed network resolves through it: the
    network's dnsmasq answers the other containers' names and forwards the rest."""
    if state.net is None or not state.net.nics or state.net.nics[0].network is None:
        return
    from richc.rootfs.edit import write_edit
    from richc.templating import render

    gateway = state.net.nics[0].gateway
    text = render("rootfs/common/resolv.conf.j2", nameservers=[gateway], options=[])
    edit = write_edit(
        "etc/resolv.conf", text, f"resolve through network {state.net.nics[0].network}"
    )
    edit.run(cdir.rootfs)
    state.applied.append(edit.change.to_dict())


def spec_nics(record: NetRecord | None) -> tuple[Nic, ...]:
    if record is None:
        return ()
    return tuple(
        Nic(n.index, n.bridge, n.mac, n.host_veth, n.address, n.gateway) for n in record.nics
    )


class NetResource(BaseResource):
    name = "net"

    def prepare(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
    ) -> None:
        record = state.net
        if record is None:
            return
        for nic in record.nics:
            if nic.network is not None:
                networks.ensure_up(ctx.paths, networks.load(ctx.paths, nic.network))
            elif not networks.link_exists(nic.bridge):
                raise NotFound(
                    f"{cdir.name}: eth{nic.index}'s bridge {nic.bridge} is gone",
                    hint="make the bridge again, or `richc set` another network",
                )
            networks.detach_leftover(nic.host_veth)  # a crash's (runc) or a killed LXC's
        if record.ports:
            from netctl.errors import NetError
            from netctl.ports import check_host_ports, parse_publish

            try:
                check_host_ports([parse_publish(_port_text(p)) for p in record.ports])
            except NetError as exc:
                raise Conflict(f"{cdir.name}: {exc.message}", hint=exc.hint) from None
            networks.apply_rules(ctx.paths, ctx.store, include=(cdir.name,))

    def contribute(self, config: cfg.ContainerConfig, state: State) -> Contribution:
        return Contribution(nics=spec_nics(state.net))

    def stopped(self, ctx: Context, cdir: ContainerDir, state: State) -> None:
        if state.net is None:
            return
        for nic in state.net.nics:
            networks.detach_leftover(nic.host_veth)
        if state.net.ports:
            networks.apply_rules(ctx.paths, ctx.store, exclude=(cdir.name,))

    def release(self, ctx: Context, cdir: ContainerDir, state: State) -> None:
        record = state.net
        if record is None:
            return
        for nic in record.nics:
            networks.detach_leftover(nic.host_veth)
        try:
            # Under the networks' lock: concurrent rm's rewrite the same hosts files, and
            # the last one out takes a default network away (networks.down_if_unused).
            with networks.network_lock(ctx.paths):
                _publish_names(ctx, record, exclude=cdir.name)
                if record.ports:
                    networks.apply_rules(ctx.paths, ctx.store, exclude=(cdir.name,))
        except RichcError as exc:
            # rm must not stop half-way: the names and rules are rebuilt from the store by
            # the next create, start or `richc network` command anyway.
            log.warning("warning: %s: %s", cdir.name, exc.message)

    def describe(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig | None, state: State
    ) -> Any:
        return describe(state.net, config)


def _port_text(port: PortRecord) -> str:
    host = f"{port.host_ip}:" if port.host_ip else ""
    return f"{host}{port.host_port}:{port.container_port}/{port.proto}"


def describe(record: NetRecord | None, config: cfg.ContainerConfig | None) -> Any:
    mode = config.net.mode if config is not None else None
    if record is None:
        return {"mode": "none" if mode == "nics" else mode, "nics": [], "ports": []}
    nics = []
    for nic in record.nics:
        address = IPv4Interface(nic.address) if nic.address else None
        nics.append(
            {
                "name": f"eth{nic.index}",
                "network": nic.network,
                "bridge": nic.bridge,
                "mac": nic.mac,
                "address": str(address.ip) if address else None,
                "prefix": address.network.prefixlen if address else None,
                "gateway": nic.gateway,
                "host_veth": nic.host_veth,
            }
        )
    first = record.nics[0].address if record.nics else None
    ports = [
        {
            "host_ip": p.host_ip,
            "host_port": p.host_port,
            "container_ip": str(IPv4Interface(first).ip) if first else None,
            "container_port": p.container_port,
            "proto": p.proto,
        }
        for p in record.ports
    ]
    return {"mode": "nics", "nics": nics, "ports": ports}


def address_of(state: State) -> IPv4Address | None:
    if state.net is None or not state.net.nics or state.net.nics[0].address is None:
        return None
    return IPv4Interface(state.net.nics[0].address).ip


RESOURCE = NetResource()
