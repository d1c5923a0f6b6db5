"""richc's managed networks: `richc network create|list|inspect|rm`, the default network
made on first use, and richc's nftables table, on top of the standalone ``netctl``.

A network's definition lives in ``ROOT/var/lib/richc/networks/NAME/network.json`` with its
dnsmasq files; dnsmasq's pid file in ``ROOT/run/richc/networks/``. Links and nftables are
host-wide while roots are not, so under a ``--root`` other than ``/`` bridge names and the
nftables table carry a hash of the root: two test roots never share a bridge or a table.

The fast path (a start on a network that is up) reads ``/sys/class/net`` and dnsmasq's pid
file only: pyroute2, which netlink goes through, costs ~100-200 ms to import, and is loaded
only to (re)make a bridge or a runc container's veth.

Which containers use a network is :mod:`richc.netusers`'s (from the store); the addresses,
leases and names a network hands them, :mod:`richc.netleases`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Any

from richc.config.net import DEFAULT_NETWORK, validate_network_name
from richc.errors import Conflict, HostUnsupported, NotFound, RichcError, UsageError
from richc.lock import locked
from richc.netusers import published, users_of
from richc.paths import HostPaths
from richc.store import Store, write_atomic

if TYPE_CHECKING:
    from netctl.network import NetworkDef

log = logging.getLogger("richc.net")

DEFINITION = "network.json"
HOST_PICK_LOCK = Path("/run/lock/richc-subnet-pick.lock")
IFF_UP = 0x1  # <linux/if.h>


@dataclass(frozen=True)
class Network:
    """A managed network as richc records it."""

    name: str
    bridge: str
    subnet: str
    nat: bool = True
    ipv6: str | None = None
    # Made on first use with a subnet richc picked (the default network), not by the
    # operator: it goes altogether with its last container, and the next one picks again.
    auto: bool = False

    @property
    def network(self) -> IPv4Network:
        return IPv4Network(self.subnet)

    @property
    def gateway(self) -> IPv4Address:
        return self.network.network_address + 1

    def definition(self) -> NetworkDef:
        from netctl.network import NetworkDef

        return NetworkDef.make(
            self.name, self.subnet, nat=self.nat, ipv6=self.ipv6 or "none", bridge=self.bridge
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bridge": self.bridge,
            "subnet": self.subnet,
            "gateway": str(self.gateway),
            "nat": self.nat,
            "ipv6": self.ipv6,
            "auto": self.auto,
        }


def wrap(exc: Exception) -> RichcError:
    """netctl's errors (message + hint) as richc's, once."""
    from netctl.errors import NetError, ToolMissing

    if isinstance(exc, ToolMissing):
        return HostUnsupported(exc.message, hint=exc.hint)
    if isinstance(exc, NetError):
        return RichcError(exc.message, hint=exc.hint)
    return RichcError(str(exc))


def _root_tag(paths: HostPaths) -> str:
    """Empty for the host's own root; else a short hash of the root, so host-wide names
    (bridges, veths, the nftables table) of two roots never meet."""
    root = str(paths.root.resolve())
    if root == "/":
        return ""
    return hashlib.blake2b(root.encode(), digest_size=4).hexdigest()


def bridge_for(paths: HostPaths, name: str) -> str:
    tag = _root_tag(paths)
    if not tag:
        from netctl.ipam import bridge_name

        return bridge_name(name)
    digest = hashlib.blake2b(f"{tag}:{name}".encode(), digest_size=4).hexdigest()
    return f"rcb{digest}"  # 11 characters, inside IFNAMSIZ


def table_for(paths: HostPaths) -> str:
    tag = _root_tag(paths)
    return "richc" if not tag else f"richc_{tag}"


def nic_id(paths: HostPaths, container: str) -> str:
    """What veth names and MACs are derived from: the container, and the root if not /."""
    tag = _root_tag(paths)
    return container if not tag else f"{tag}:{container}"


def network_dir(paths: HostPaths, name: str) -> Path:
    return paths.networks / name


def run_dir(paths: HostPaths) -> Path:
    return paths.networks_run


_held: set[Path] = set()  # network locks this process holds (the lock is re-entrant)


@contextlib.contextmanager
def network_lock(paths: HostPaths) -> Iterator[None]:
    """One lock for all networks of a root: creating one checks overlaps with the others,
    and allocating an address reads every container's. Re-entrant within a process."""
    path = paths.locks / "networks.lock"
    if path in _held:
        yield
        return
    with locked(path, "richc networks"):
        _held.add(path)
        try:
            yield
        finally:
            _held.discard(path)


def names(paths: HostPaths) -> list[str]:
    base = paths.networks
    try:
        return sorted(p.name for p in base.iterdir() if (p / DEFINITION).is_file())
    except FileNotFoundError:
        return []


def load(paths: HostPaths, name: str) -> Network:
    try:
        data = json.loads((network_dir(paths, name) / DEFINITION).read_text())
    except FileNotFoundError:
        raise NotFound(
            f"no network named {name}",
            hint="`richc network list` shows them; `richc network create NAME` makes one",
        ) from None
    return Network(
        data["name"],
        data["bridge"],
        data["subnet"],
        data["nat"],
        data.get("ipv6"),
        bool(data.get("auto", False)),
    )


def all_networks(paths: HostPaths) -> list[Network]:
    return [load(paths, n) for n in names(paths)]


def create(
    paths: HostPaths,
    name: str,
    *,
    subnet: str | None = None,
    nat: bool = True,
    ipv6: str = "none",
) -> Network:
    """Define and bring up a network; refused (changing nothing) on a clash."""
    with network_lock(paths):
        return _create_locked(paths, name, subnet=subnet, nat=nat, ipv6=ipv6)


def _create_locked(
    paths: HostPaths, name: str, *, subnet: str | None, nat: bool, ipv6: str, auto: bool = False
) -> Network:

    validate_network_name(name, "network")
    if subnet is None:
        # Picking a free subnet reads the host's routes, which every root shares: two roots
        # picking at once would take the same one. The lock is the host's, not the root's.
        with locked(HOST_PICK_LOCK, "picking a free subnet", wait=60):
            return _make(paths, name, subnet=None, nat=nat, ipv6=ipv6, auto=auto)
    return _make(paths, name, subnet=subnet, nat=nat, ipv6=ipv6, auto=auto)


def _make(
    paths: HostPaths, name: str, *, subnet: str | None, nat: bool, ipv6: str, auto: bool
) -> Network:
    from netctl import bridge as nbridge
    from netctl import ipam
    from netctl.errors import NetError
    from netctl.network import NetworkDef, check_new

    if (network_dir(paths, name) / DEFINITION).exists():
        raise Conflict(
            f"network {name} already exists", hint="`richc network inspect " + name + "`"
        )
    others = [n.definition() for n in all_networks(paths)]
    try:
        if subnet is None:
            taken = [o.subnet for o in others] + [h.network for h in nbridge.host_networks()]
            chosen = ipam.pick_subnet(taken)
        else:
            chosen = ipam.parse_subnet(subnet)
        definition = NetworkDef.make(
            name, chosen, nat=nat, ipv6=ipv6, bridge=bridge_for(paths, name)
        )
        check_new(definition, others)
    except NetError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None
    network = Network(
        name,
        definition.bridge,
        str(definition.subnet),
        nat,
        str(definition.ipv6) if definition.ipv6 else None,
        auto,
    )
    directory = network_dir(paths, name)
    directory.mkdir(parents=True, exist_ok=True)
    # dnsmasq drops to an unprivileged user and re-reads its hosts files from here.
    for path in (directory, *directory.parents):
        if path == Path("/"):
            break
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | 0o001)
    write_atomic(directory / DEFINITION, json.dumps(network.to_dict(), indent=2) + "\n")
    try:
        bring_up(paths, network)
    except BaseException:
        with contextlib.suppress(Exception):
            _remove_locked(paths, network)
        raise
    return network


def ensure(paths: HostPaths, name: str) -> Network:
    """The network *name*, made on first use when it is the default network."""
    if name in names(paths):
        return load(paths, name)
    if name != DEFAULT_NETWORK:
        load(paths, name)  # raises NotFound with the hint
    with network_lock(paths):
        if name in names(paths):
            return load(paths, name)
        log.info("creating the default network %s", name)
        return _create_locked(paths, name, subnet=None, nat=True, ipv6="none", auto=True)


def is_up(paths: HostPaths, network: Network) -> bool:
    """Cheap: the bridge exists and is up, and the network's dnsmasq runs."""
    # netctl.dnsmasq alone: netctl.network (bridge, nft, guestcfg) costs 20-30 ms to
    # import, which a start on a network that is already up should not pay.
    from netctl import dnsmasq

    # The administrative UP flag, not operstate: a bridge with no running port (the first
    # container on the network not started yet) has no carrier and reads "down".
    try:
        flags = int(Path(f"/sys/class/net/{network.bridge}/flags").read_text(), 16)
    except (OSError, ValueError):
        return False
    if not flags & IFF_UP:
        return False
    files = dnsmasq.Paths.under(network_dir(paths, network.name), run_dir(paths), network.name)
    return dnsmasq.status(files).running


def bring_up(paths: HostPaths, network: Network) -> None:
    """Bridge, forwarding, dnsmasq and richc's rules for *network*; idempotent."""
    from netctl import network as nnet
    from netctl.errors import NetError
    from netctl.nft import check_available

    try:
        check_available()
        nnet.up(network.definition(), network_dir(paths, network.name), run_dir(paths))
    except NetError as exc:
        raise wrap(exc) from None
    apply_rules(paths)


def ensure_up(paths: HostPaths, network: Network) -> None:
    if not is_up(paths, network):
        bring_up(paths, network)


def remove(paths: HostPaths, name: str, store: Store, *, force: bool = False) -> None:
    """Take a network down and delete it; refused while a container has a NIC on it."""
    with network_lock(paths):
        network = load(paths, name)
        users = users_of(store, name)
        if users and not force:
            raise Conflict(
                f"network {name} is used by {', '.join(users)}",
                hint="remove those containers first (or `richc network rm --force`)",
            )
        _remove_locked(paths, network)


def _remove_locked(paths: HostPaths, network: Network) -> None:
    from netctl import network as nnet
    from netctl.errors import NetError

    try:
        nnet.down(
            network.definition(), network_dir(paths, network.name), run_dir(paths), purge=True
        )
    except NetError as exc:
        raise wrap(exc) from None
    shutil.rmtree(network_dir(paths, network.name), ignore_errors=True)
    apply_rules(paths)


def apply_rules(
    paths: HostPaths,
    store: Store | None = None,
    *,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> None:
    """Rebuild richc's nftables table for this root: masquerade for every NAT network,
    DNAT for the published ports of running containers. With no network, the table goes.

    Under the networks' lock: two starts computing the table from the store at once could
    each apply one without the other's ports."""
    from netctl import nft
    from netctl.errors import NetError
    from netctl.network import apply_rules as net_apply

    with network_lock(paths):
        networks = all_networks(paths)
        table = table_for(paths)
        try:
            if not networks:
                nft.remove_table(table)
                return
            ports = published(store or Store(paths), include=include, exclude=exclude)
            net_apply([n.definition() for n in networks], ports, table=table)
        except NetError as exc:
            raise wrap(exc) from None


def describe(paths: HostPaths, store: Store, network: Network) -> dict[str, Any]:
    from netctl.network import status as net_status

    out = network.to_dict()
    try:
        status = net_status(network.definition(), network_dir(paths, network.name), run_dir(paths))
        out["up"] = status.bridge_exists and status.dnsmasq.running
        out["dnsmasq_pid"] = status.dnsmasq.pid
        out["ip_forward"] = status.ip_forward
    except Exception as exc:  # status is informational: say why it could not be read
        out["up"] = None
        out["error"] = str(exc)
    out["containers"] = users_of(store, network.name)
    out["table"] = table_for(paths)
    return out


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def detach_leftover(host_veth: str) -> None:
    """Delete a host-side veth a crash left (cheap when there is none: no netlink)."""
    if not link_exists(host_veth):
        return
    from netctl import veth
    from netctl.errors import NetError

    try:
        veth.detach_name(host_veth)
    except NetError as exc:
        raise wrap(exc) from None


def down_if_unused(paths: HostPaths, store: Store) -> None:
    """With no container left in the store, take every network down: dnsmasq stopped,
    bridge deleted, richc's table removed. Their definitions stay; the next container on a
    network brings it up again (:func:`ensure_up`). So a throwaway --root (tests,
    benchmarks) leaves no link, process or rule behind once its containers are gone."""
    if store.names() or not names(paths):
        return
    from netctl import network as nnet
    from netctl import nft
    from netctl.errors import NetError

    with network_lock(paths):
        if store.names():
            return
        try:
            for network in all_networks(paths):
                nnet.down(network.definition(), network_dir(paths, network.name), run_dir(paths))
                if network.auto:  # the next container picks a subnet afresh
                    shutil.rmtree(network_dir(paths, network.name), ignore_errors=True)
            nft.remove_table(table_for(paths))
        except NetError as exc:
            log.warning("warning: taking the unused networks down: %s", exc.message)
        with contextlib.suppress(OSError):
            run_dir(paths).rmdir()  # empty once every dnsmasq's pid file went
