"""netctl.nft: the rendered table, as nft's JSON, checked without touching the kernel."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any

import pytest

from netctl import nft
from netctl.errors import ToolFailed, ToolMissing
from netctl.ports import PublishedPort, parse_publish

NAT = nft.RuleNet("richc0", IPv4Network("10.77.0.0/24"), True, IPv6Network("fd12:3456:789a::/64"))
ROUTED = nft.RuleNet("lab", IPv4Network("10.88.0.0/24"), False)
WEB = PublishedPort.bind(parse_publish("8080:80"), IPv4Address("10.77.0.10"), "richc0", "web")
DNS = PublishedPort.bind(
    parse_publish("127.0.0.1:5353:53/udp"), IPv4Address("10.77.0.11"), "richc0", "dns"
)


def rules(doc: dict[str, Any], chain: str) -> list[list[dict[str, Any]]]:
    return [
        c["add"]["rule"]["expr"]
        for c in doc["nftables"]
        if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain
    ]


def test_the_transaction_replaces_the_table_whether_or_not_it_exists() -> None:
    doc = nft.render([NAT], [WEB], table="richc")
    table = {"table": {"family": "inet", "name": "richc"}}
    assert doc["nftables"][:3] == [{"add": table}, {"delete": table}, {"add": table}]
    # Everything after is an add inside that one table, and the whole is plain JSON.
    for command in doc["nftables"][3:]:
        (obj,) = command["add"].values()
        assert (obj["family"], obj["table"]) == ("inet", "richc")
    assert json.loads(json.dumps(doc)) == doc


def test_chains_and_their_hooks() -> None:
    doc = nft.render([NAT], [], table="t")
    chains = {
        c["add"]["chain"]["name"]: c["add"]["chain"]
        for c in doc["nftables"]
        if "chain" in c.get("add", {})
    }
    assert {n: (c["type"], c["hook"], c["prio"]) for n, c in chains.items()} == {
        "guard": ("filter", "prerouting", -300),
        "prerouting": ("nat", "prerouting", -100),
        "output": ("nat", "output", -100),
        "postrouting": ("nat", "postrouting", 100),
        "forward": ("filter", "forward", 0),
    }
    assert {c["policy"] for c in chains.values()} == {"accept"}


def test_published_ports_dnat_on_every_local_address_or_the_one_given() -> None:
    doc = nft.render([NAT], [WEB, DNS])
    fib = {
        "match": {
            "op": "==",
            "left": {"fib": {"result": "type", "flags": ["daddr"]}},
            "right": "local",
        }
    }
    web = [
        fib,
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                "right": 8080,
            }
        },
        {"dnat": {"family": "ip", "addr": "10.77.0.10", "port": 80}},
    ]
    dns = [
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                "right": "127.0.0.1",
            }
        },
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "udp", "field": "dport"}},
                "right": 5353,
            }
        },
        {"dnat": {"family": "ip", "addr": "10.77.0.11", "port": 53}},
    ]
    # Sorted by host port; the host's own connections (output) get the same rules.
    assert rules(doc, "prerouting") == [dns, web]
    assert rules(doc, "output") == [dns, web]
    comments = [
        c["add"]["rule"].get("comment")
        for c in doc["nftables"]
        if c.get("add", {}).get("rule", {}).get("chain") == "prerouting"
    ]
    assert comments == ["dns 127.0.0.1:5353:53/udp", "web 8080:80/tcp"]


def _masq_sources(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(saddr prefix, oifname op, bridge) of each masquerade rule."""
    out = []
    for expr in rules(doc, "postrouting"):
        assert expr[-1] == {"masquerade": None}
        saddr = next(
            m["match"]["right"]["prefix"]
            for m in expr
            if "payload" in m.get("match", {}).get("left", {})
        )
        oif = next(
            m["match"]
            for m in expr
            if m.get("match", {}).get("left") == {"meta": {"key": "oifname"}}
        )
        out.append((f"{saddr['addr']}/{saddr['len']}", oif["op"], oif["right"]))
    return out


def test_masquerade_for_nat_networks_only_and_for_hairpins() -> None:
    doc = nft.render([NAT, ROUTED], [WEB])
    assert _masq_sources(doc) == [
        ("127.0.0.0/8", "==", "lab"),
        ("10.88.0.0/24", "==", "lab"),
        ("127.0.0.0/8", "==", "richc0"),
        ("10.77.0.0/24", "==", "richc0"),
        ("10.77.0.0/24", "!=", "richc0"),
        ("fd12:3456:789a::/64", "!=", "richc0"),
    ]
    hairpin = rules(doc, "postrouting")[3]
    assert {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}} in hairpin


def _summary(expr: list[dict[str, Any]]) -> tuple[str, ...]:
    """A rule as words: its meta/ct matches and its verdict."""
    words: list[str] = []
    for item in expr:
        match = item.get("match")
        if match is None:
            words.append(next(iter(item)))
        elif "meta" in match["left"]:
            words.append(f"{match['left']['meta']['key']}{match['op']}{match['right']}")
        elif "ct" in match["left"]:
            words.append(f"ct {match['left']['ct']['key']} {match['right']}")
    return tuple(words)


def test_forward_accepts_ours_and_closes_nat_networks() -> None:
    forward = [_summary(e) for e in rules(nft.render([NAT, ROUTED], []), "forward")]
    assert forward == [
        ("ct state ['established', 'related']", "accept"),
        ("iifname==lab", "accept"),
        ("oifname==lab", "ct status dnat", "accept"),
        # A routed network is open to whoever routes to it...
        ("oifname==lab", "accept"),
        ("iifname==richc0", "accept"),
        ("oifname==richc0", "ct status dnat", "accept"),
        # ...a NAT network only to DNAT'd (published) connections.
        ("oifname==richc0", "drop"),
    ]


def test_guard_keeps_containers_off_the_host_loopback() -> None:
    assert rules(nft.render([NAT], []), "guard") == [
        [
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "richc0"}},
            {
                "match": {
                    "op": "==",
                    "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                    "right": {"prefix": {"addr": "127.0.0.0", "len": 8}},
                }
            },
            {"drop": None},
        ]
    ]


def test_nothing_to_declare_removes_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[list[str], Any]] = []
    monkeypatch.setattr(nft, "run_nft", lambda args, doc=None: sent.append((list(args), doc)) or "")
    nft.apply([], [], "t")
    assert sent == [(["-f", "-"], nft.render_removal("t"))]
    assert nft.render_removal("t")["nftables"][-1] == {
        "delete": {"table": {"family": "inet", "name": "t"}}
    }


def test_missing_nft_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nft, "nft_path", lambda: None)
    with pytest.raises(ToolMissing, match="nftables is not installed") as info:
        nft.apply([NAT], [WEB])
    assert info.value.hint == "apt-get install nftables"
    with pytest.raises(ToolMissing):
        nft.check_available()


def test_current_table_is_none_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(args: list[str], doc: Any = None) -> str:
        raise ToolFailed(["nft"], 1, "Error: No such file or directory\nlist table inet richc\n")

    monkeypatch.setattr(nft, "run_nft", fail)
    assert nft.current_table() is None


def test_forward_blockers_are_other_tables_dropping_forwarded_traffic() -> None:
    objects = [
        {"table": {"family": "ip", "name": "filter"}},
        {
            "chain": {
                "family": "ip",
                "table": "filter",
                "name": "FORWARD",
                "hook": "forward",
                "policy": "drop",
            }
        },
        {
            "chain": {
                "family": "ip",
                "table": "filter",
                "name": "INPUT",
                "hook": "input",
                "policy": "drop",
            }
        },
        {
            "chain": {
                "family": "inet",
                "table": "fw",
                "name": "fwd",
                "hook": "forward",
                "policy": "accept",
            }
        },
        {
            "chain": {
                "family": "inet",
                "table": "richc",
                "name": "forward",
                "hook": "forward",
                "policy": "drop",
            }
        },
    ]
    assert nft.forward_blockers(objects) == ["ip filter FORWARD"]
