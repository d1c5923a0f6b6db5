"""What the store says about a network's containers: users, NICs, addresses and published
ports, all read through one walk that skips what a crash or a concurrent rm left."""

from __future__ import annotations

import os
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from richc.netleases import nics_on, taken_addresses
from richc.netusers import published, users_of
from richc.networks import Network
from richc.paths import HostPaths
from richc.state import InitRecord, NetRecord, NicRecord, PortRecord, State
from richc.store import Store

NET1 = Network("net1", "rcb1", "10.9.1.0/24")


def nic(index: int, network: str, address: str | None) -> NicRecord:
    return NicRecord(index, f"br-{network}", f"02:00:00:00:00:0{index}", "v", network, address)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(HostPaths.from_root(tmp_path))
    running = InitRecord(pid=os.getpid())  # this process: alive for the test's length
    states = {
        # stopped, with a port
        "a": State("a", net=NetRecord((nic(0, "net1", "10.9.1.10/24"),), (PortRecord(80, 8080),))),
        # running, on two networks, with a port
        "b": State(
            "b",
            net=NetRecord(
                (nic(0, "net1", "10.9.1.11/24"), nic(1, "net2", None)), (PortRecord(81, 8081),)
            ),
            init_run=running,
        ),
        # running, no net at all
        "c": State("c", init_run=running),
        # on net1 with no address (DHCP) and no port
        "d": State("d", net=NetRecord((nic(0, "net1", None),))),
    }
    for name, state in states.items():
        store.reserve(name).save_state(state)
    store.reserve("e").state_file.write_text("{")  # corrupt: skipped, not an error
    store.reserve("f")  # being created: no state file yet
    return store


def test_users_and_nics_of_a_network(store: Store) -> None:
    assert users_of(store, "net1") == ["a", "b", "d"]
    assert users_of(store, "net2") == ["b"]
    assert users_of(store, "net3") == []
    assert [(c, n.index) for c, n in nics_on(store, NET1)] == [("a", 0), ("b", 0), ("d", 0)]
    assert [c for c, _ in nics_on(store, NET1, exclude="b")] == ["a", "d"]
    assert taken_addresses(store, NET1, exclude="a") == {IPv4Address("10.9.1.11"): "b"}


def test_published_ports_follow_running_include_and_exclude(store: Store) -> None:
    def owners(**kwargs: Any) -> list[tuple[str, int, IPv4Address, str]]:
        return [
            (p.owner, p.host_port, p.container_addr, p.bridge) for p in published(store, **kwargs)
        ]

    b = ("b", 81, IPv4Address("10.9.1.11"), "br-net1")
    a = ("a", 80, IPv4Address("10.9.1.10"), "br-net1")
    assert owners() == [b]
    assert owners(include=("a",)) == [a, b]
    assert owners(exclude=("b",)) == []
    assert owners(all_containers=True) == [a, b]
    assert owners(all_containers=True, exclude=("a",)) == [b]
