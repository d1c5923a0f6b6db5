"""richc's nftables table, declared whole: a pure function renders the table from the
networks and published ports, and one ``nft -j -f -`` transaction replaces it atomically.

Only the one table (``inet richc`` by default) is ever touched. Its chains:

- ``guard`` (filter, prerouting, priority raw): drops packets from a managed bridge to
  127.0.0.0/8. Publishing on the host's loopback needs ``route_localnet`` on the bridge
  (see below), which would otherwise let a container reach services bound to the host's
  127.0.0.1.
- ``prerouting`` (nat, dstnat): DNAT of published ports for packets arriving from outside
  or from containers, addressed to one of the host's own addresses (``fib daddr type
  local``) or to the one host address the port was published on.
- ``output`` (nat, dstnat): the same DNAT for connections the host itself makes, so
  ``curl HOST:PORT`` and ``curl 127.0.0.1:PORT`` on the host reach the container.
  A packet from 127.0.0.1 may only leave by a non-loopback link whose ``route_localnet``
  is set; netctl sets it on bridges that carry such ports (``network.apply_rules``) and
  the ``postrouting`` chain masquerades 127.0.0.0/8 to the bridge's address, so the
  container answers the gateway rather than its own loopback.
- ``postrouting`` (nat, srcnat): masquerade of a NAT network's subnet leaving by any link
  but its bridge; hairpin masquerade of DNAT'd connections that come back into the same
  bridge (container A -> HOST:PORT -> container B: B must answer through the host, not
  straight to A, or A drops a reply from an address it never spoke to).
- ``forward`` (filter, policy accept): accepts established traffic, traffic from the
  bridges and DNAT'd traffic to them; new connections from elsewhere into a NAT network
  are dropped, so a NAT network is reached only through its published ports.

An accept here does not override a drop elsewhere: every base chain on the forward hook
sees the packet, and a drop in any of them (e.g. Docker's ``ip filter FORWARD`` with
policy drop) is final. ``forward_blockers()`` finds such chains so ``doctor`` can say so;
netctl does not edit other tools' tables. The hosts this was written on have no other
tables (``nft list ruleset`` is empty and there is no iptables).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from netctl.errors import NetError, ToolFailed, ToolMissing
from netctl.ports import PublishedPort

TABLE = "richc"
FAMILY = "inet"

# Chain priorities, as nft names them: raw -300, dstnat -100, filter 0, srcnat 100.
PRIO_RAW = -300
PRIO_DSTNAT = -100
PRIO_FILTER = 0
PRIO_SRCNAT = 100

LOOPBACK = IPv4Network("127.0.0.0/8")

_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_HINT = "apt-get install nftables"

Json = dict[str, Any]


@dataclass(frozen=True)
class RuleNet:
    """What the rules need to know of a network."""

    bridge: str
    subnet: IPv4Network
    nat: bool = True
    subnet6: IPv6Network | None = None


# --- expression builders (nft's JSON schema, libnftables-json(5)) ---------------------------


def _match(left: Json, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> Json:
    return {"meta": {"key": key}}


def _payload(protocol: str, field: str) -> Json:
    return {"payload": {"protocol": protocol, "field": field}}


def _prefix(net: IPv4Network | IPv6Network) -> Json:
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _ct(key: str) -> Json:
    return {"ct": {"key": key}}


def _fib_local() -> Json:
    return _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")


_ACCEPT: Json = {"accept": None}
_DROP: Json = {"drop": None}
_MASQ: Json = {"masquerade": None}


def _table(name: str) -> Json:
    return {"table": {"family": FAMILY, "name": name}}


def _chain(table: str, name: str, kind: str, hook: str, prio: int) -> Json:
    return {
        "chain": {
            "family": FAMILY,
            "table": table,
            "name": name,
            "type": kind,
            "hook": hook,
            "prio": prio,
            "policy": "accept",
        }
    }


def _rule(table: str, chain: str, expr: list[Json], comment: str = "") -> Json:
    rule: Json = {"family": FAMILY, "table": table, "chain": chain, "expr": expr}
    if comment:
        rule["comment"] = comment
    return {"rule": rule}


# --- rendering ---------------------------------------------------------------------------


def _dnat(port: PublishedPort) -> list[Json]:
    dest = (
        _match(_payload("ip", "daddr"), str(port.host_ip))
        if port.host_ip is not None
        else _fib_local()
    )
    return [
        dest,
        _match(_payload(str(port.proto), "dport"), port.host_port),
        {"dnat": {"family": "ip", "addr": str(port.container_addr), "port": port.container_port}},
    ]


def render_rules(
    networks: Sequence[RuleNet], ports: Sequence[PublishedPort], table: str = TABLE
) -> list[Json]:
    """The table's chains and rules as nft JSON commands' objects (without the table)."""
    items: list[Json] = [
        _chain(table, "guard", "filter", "prerouting", PRIO_RAW),
        _chain(table, "prerouting", "nat", "prerouting", PRIO_DSTNAT),
        _chain(table, "output", "nat", "output", PRIO_DSTNAT),
        _chain(table, "postrouting", "nat", "postrouting", PRIO_SRCNAT),
        _chain(table, "forward", "filter", "forward", PRIO_FILTER),
    ]
    bridges = sorted({n.bridge for n in networks})
    for bridge in bridges:
        items.append(
            _rule(
                table,
                "guard",
                [
                    _match(_meta("iifname"), bridge),
                    _match(_payload("ip", "daddr"), _prefix(LOOPBACK)),
                    _DROP,
                ],
                "no host loopback from containers",
            )
        )
    for port in sorted(ports, key=lambda p: (p.host_port, str(p.proto), str(p.host_ip))):
        comment = f"{port.owner} {port.request}"
        items.append(_rule(table, "prerouting", _dnat(port), comment))
        items.append(_rule(table, "output", _dnat(port), comment))
    for net in sorted(networks, key=lambda n: n.bridge):
        out_bridge = _match(_meta("oifname"), net.bridge)
        items.append(
            _rule(
                table,
                "postrouting",
                [out_bridge, _match(_payload("ip", "saddr"), _prefix(LOOPBACK)), _MASQ],
                "host loopback to a published port",
            )
        )
        items.append(
            _rule(
                table,
                "postrouting",
                [
                    out_bridge,
                    _match(_payload("ip", "saddr"), _prefix(net.subnet)),
                    _match(_ct("status"), "dnat", "in"),
                    _MASQ,
                ],
                "hairpin",
            )
        )
        if net.nat:
            items.append(
                _rule(
                    table,
                    "postrouting",
                    [
                        _match(_payload("ip", "saddr"), _prefix(net.subnet)),
                        _match(_meta("oifname"), net.bridge, "!="),
                        _MASQ,
                    ],
                    f"nat {net.bridge}",
                )
            )
            if net.subnet6 is not None:
                items.append(
                    _rule(
                        table,
                        "postrouting",
                        [
                            _match(_payload("ip6", "saddr"), _prefix(net.subnet6)),
                            _match(_meta("oifname"), net.bridge, "!="),
                            _MASQ,
                        ],
                        f"nat6 {net.bridge}",
                    )
                )
    if bridges:
        items.append(
            _rule(
                table,
                "forward",
                [_match(_ct("state"), ["established", "related"], "in"), _ACCEPT],
            )
        )
    for net in sorted(networks, key=lambda n: n.bridge):
        items.append(_rule(table, "forward", [_match(_meta("iifname"), net.bridge), _ACCEPT]))
        into = _match(_meta("oifname"), net.bridge)
        items.append(_rule(table, "forward", [into, _match(_ct("status"), "dnat", "in"), _ACCEPT]))
        # A routed network is reachable as such; a NAT one only through published ports.
        items.append(_rule(table, "forward", [into, _DROP if net.nat else _ACCEPT]))
    return items


def render(networks: Sequence[RuleNet], ports: Sequence[PublishedPort], table: str = TABLE) -> Json:
    """The whole transaction: add the table (so the delete cannot fail when it is missing),
    delete it with everything in it, and add it again with its chains and rules. nft runs
    the batch atomically: packets see the old table or the new one, never none."""
    commands: list[Json] = [
        {"add": _table(table)},
        {"delete": _table(table)},
        {"add": _table(table)},
    ]
    commands += [{"add": item} for item in render_rules(networks, ports, table)]
    return {"nftables": commands}


def render_removal(table: str = TABLE) -> Json:
    """Remove the table whether or not it exists."""
    return {"nftables": [{"add": _table(table)}, {"delete": _table(table)}]}


# --- running nft -------------------------------------------------------------------------


def nft_path() -> str | None:
    return shutil.which("nft", path=_PATH)


def run_nft(args: Sequence[str], document: Json | None = None) -> str:
    """The one door to nft: ``nft -j ARGS`` with *document* as JSON on stdin when given;
    stdout, or ToolMissing/ToolFailed."""
    nft = nft_path()
    if nft is None:
        raise ToolMissing(
            "nftables is not installed (no nft command): published ports and NAT need it",
            hint=_HINT,
        )
    argv = [nft, "-j", *args]
    proc = subprocess.run(
        argv,
        input=json.dumps(document) if document is not None else None,
        stdin=None if document is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={"PATH": _PATH, "LC_ALL": "C"},
        check=False,
    )
    if proc.returncode != 0:
        raise ToolFailed(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def apply(networks: Sequence[RuleNet], ports: Sequence[PublishedPort], table: str = TABLE) -> None:
    """Make the table exactly what *networks* and *ports* describe, in one transaction.
    With no networks and no ports the table is removed instead."""
    if not networks and not ports:
        remove_table(table)
        return
    run_nft(["-f", "-"], render(networks, ports, table))


def remove_table(table: str = TABLE) -> None:
    """Remove the table; nothing happens when it is not there."""
    run_nft(["-f", "-"], render_removal(table))


def current_table(table: str = TABLE) -> list[Json] | None:
    """The table's objects as ``nft -j list table`` gives them (chains and rules, without
    the metainfo), or None when the table does not exist."""
    try:
        out = run_nft(["list", "table", FAMILY, table])
    except ToolFailed as err:
        if "No such file or directory" in err.stderr:
            return None
        raise
    objects: list[Json] = json.loads(out)["nftables"]
    return [o for o in objects if "metainfo" not in o]


def ruleset() -> list[Json]:
    objects: list[Json] = json.loads(run_nft(["list", "ruleset"]))["nftables"]
    return [o for o in objects if "metainfo" not in o]


def forward_blockers(objects: Iterable[Json] | None = None, table: str = TABLE) -> list[str]:
    """Base chains of other tables on the forward hook whose policy is drop, as
    ``FAMILY TABLE CHAIN``: each would drop container traffic richc's own forward chain
    accepts. *objects* defaults to the live ruleset."""
    found = []
    for obj in ruleset() if objects is None else objects:
        chain = obj.get("chain")
        if not chain or chain.get("hook") != "forward" or chain.get("policy") != "drop":
            continue
        if chain.get("family") == FAMILY and chain.get("table") == table:
            continue
        found.append(f"{chain['family']} {chain['table']} {chain['name']}")
    return found


def check_available() -> None:
    """ToolMissing unless nft is installed and the kernel accepts a (dry-run) table."""
    if nft_path() is None:
        raise ToolMissing("nftables is not installed (no nft command)", hint=_HINT)
    try:
        run_nft(["-c", "-f", "-"], render([], [], "richc_probe"))
    except ToolFailed as err:
        raise NetError(
            f"nftables does not work here: {err.message}",
            hint="the kernel needs nf_tables (CONFIG_NF_TABLES) and nat support",
        ) from err
