"""Which containers use richc's networks, and the ports they publish, read from the store.

The store is the source of truth: a container holds its NICs and ports from create to rm,
whether it runs or not. Below :mod:`richc.networks`, which asks it before removing a
network and when rebuilding the nftables table.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface
from typing import TYPE_CHECKING

from richc.errors import RichcError

if TYPE_CHECKING:
    from netctl.ports import PublishedPort
    from richc.state import NetRecord, State
    from richc.store import Store


def attached(
    store: Store, *, exclude: tuple[str, ...] = ()
) -> Iterator[tuple[str, NetRecord, State]]:
    """(container, its net record, its state) for every container the store records one
    for, less *exclude*."""
    for container in store.names():
        if container in exclude:
            continue
        try:
            state = store.container(container).load_state()
        except (RichcError, OSError):
            continue  # removed meanwhile, or half-made: it holds nothing yet
        if state.net is not None:
            yield container, state.net, state


def users_of(store: Store, name: str) -> list[str]:
    return [c for c, record, _ in attached(store) if any(n.network == name for n in record.nics)]


def published(
    store: Store,
    *,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    all_containers: bool = False,
) -> list[PublishedPort]:
    """The published ports of running containers (and of *include*, being started; not of
    *exclude*, being stopped; of every container with *all_containers*), bound to the
    address and bridge of their first NIC."""
    from richc.procs import live_pid

    out = []
    for container, record, state in attached(store, exclude=exclude):
        if not record.ports:
            continue
        if not all_containers and container not in include and live_pid(state.init_run) is None:
            continue
        out += ports_of(container, record)
    return out


def ports_of(container: str, record: NetRecord) -> list[PublishedPort]:
    from netctl.ports import PortRequest, Proto, PublishedPort

    if not record.nics or record.nics[0].address is None:
        return []
    first = record.nics[0]
    address = IPv4Interface(first.address).ip
    out = []
    for port in record.ports:
        request = PortRequest(
            port.host_port,
            port.container_port,
            Proto(port.proto),
            IPv4Address(port.host_ip) if port.host_ip else None,
        )
        out.append(PublishedPort.bind(request, address, first.bridge, container))
    return out
