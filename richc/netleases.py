"""What a managed network hands each container on it: a static address, picked at create
from those the store says are taken, and a static DHCP lease and DNS name in the network's
dnsmasq, so a guest that asks by DHCP gets the same address and the others find it by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface
from typing import TYPE_CHECKING

from richc.netusers import attached
from richc.networks import network_dir, run_dir

if TYPE_CHECKING:
    from richc.networks import Network
    from richc.paths import HostPaths
    from richc.state import NicRecord
    from richc.store import Store


def nics_on(
    store: Store, network: Network, *, exclude: str = ""
) -> Iterator[tuple[str, NicRecord]]:
    """(container, NIC) for every NIC the store records on *network*."""
    for container, record, _ in attached(store, exclude=(exclude,)):
        for nic in record.nics:
            if nic.network == network.name:
                yield container, nic


def taken_addresses(store: Store, network: Network, *, exclude: str = "") -> dict[IPv4Address, str]:
    """Address -> container on *network*, from the store (the source of truth)."""
    return {
        IPv4Interface(nic.address).ip: container
        for container, nic in nics_on(store, network, exclude=exclude)
        if nic.address
    }


def free_address(network: Network, taken: dict[IPv4Address, str]) -> IPv4Address:
    """The first address of the static half of the subnet (below the DHCP pool) nobody
    holds; from .10 where the subnet is big enough, leaving the first few to the operator."""
    from netctl import ipam
    from netctl.errors import AddressConflict

    subnet = network.network
    low, _ = ipam.dhcp_range(subnet)
    start = network.gateway + (9 if subnet.num_addresses >= 64 else 1)
    candidate = start
    while candidate < low:
        if candidate not in taken:
            return candidate
        candidate += 1
    raise AddressConflict(
        f"network {network.name} has no free static address left ({start} to {low - 1})",
        holder="",
        hint="remove containers from it, or create a larger network",
    )


def set_hosts(paths: HostPaths, store: Store, network: Network, *, exclude: str = "") -> None:
    """Publish the static leases and names of every container with a NIC on *network*."""
    # netctl.hosts, not netctl.network: a create or rm need not import the bridge's and
    # nftables' modules (20-30 ms) to rewrite dnsmasq's host files.
    from netctl.hosts import set_hosts as net_set_hosts

    entries: dict[str, tuple[IPv4Address | None, str | None]] = {}
    for container, nic in nics_on(store, network, exclude=exclude):
        address = IPv4Interface(nic.address).ip if nic.address else None
        host = container if nic.index == 0 else f"{container}-eth{nic.index}"
        entries[host] = (address, nic.mac)
    net_set_hosts(network.name, entries, network_dir(paths, network.name), run_dir(paths))


def drop_leases(paths: HostPaths, network: Network, macs: list[str]) -> None:
    """Forget the DHCP leases of a removed container's NICs."""
    from netctl.hosts import release

    release(network.name, macs, network_dir(paths, network.name), run_dir(paths))
