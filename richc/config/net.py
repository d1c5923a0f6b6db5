"""A container's networking in its config: its NICs, published ports, and --keep-ip.

Forms the ``net:`` key accepts (flags build the same)::

    net: none                      # loopback only
    net: host                      # the host's own network namespace
    net: richc0                    # one NIC on a managed network (richc network create)
    net: bridge:br0                # one NIC on a bridge the operator made
    net:
      nics:
        - {network: richc0, ip: 10.77.0.10, mac: "02:00:00:00:00:01"}
        - {bridge: br0, ip: 192.168.1.5/24, gateway: 192.168.1.1}
      publish: ["8080:80", "127.0.0.1:8443:443/tcp"]
      keep_ip: true                # the VM's own static address, read from its config

Schema-1 configs (``{mode: bridge, bridge: br0, address, gateway}``) still load.
Addresses on a managed network are plain (the network has the prefix); on an operator's
bridge they carry their prefix (``A.B.C.D/N``), as richc cannot know the LAN's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from richc.errors import ConfigError

# The managed network new busybox and debian containers join unless told otherwise.
DEFAULT_NETWORK = "richc0"
NETWORK_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class NicConfig:
    network: str | None = None  # a managed network
    bridge: str | None = None  # or an operator's own bridge
    ip: str | None = None
    gateway: str | None = None  # on an operator's bridge only
    mac: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("network", "bridge", "ip", "gateway", "mac"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class NetConfig:
    """``none`` gives the container only a loopback; ``host`` shares the host's network;
    ``nics`` gives it one veth per NIC. ``default`` marks the choice richc made for a
    config that said nothing (the managed default network, or none)."""

    mode: str = "none"
    nics: tuple[NicConfig, ...] = ()
    publish: tuple[str, ...] = ()  # "[HOSTIP:]HOSTPORT:CONTAINERPORT[/PROTO]", normalised
    keep_ip: bool = False

    def to_dict(self) -> dict[str, Any]:
        if self.mode != "nics":
            return {"mode": self.mode}
        out: dict[str, Any] = {"nics": [n.to_dict() for n in self.nics]}
        if self.publish:
            out["publish"] = list(self.publish)
        if self.keep_ip:
            out["keep_ip"] = True
        return out

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(n.network for n in self.nics if n.network is not None)


def validate_network_name(name: object, key: str = "network") -> str:
    text = str(name or "")
    if not (1 <= len(text) <= 32) or not set(text) <= NETWORK_NAME_CHARS or text[0] == "-":
        raise ConfigError(
            key,
            name,
            "a network name is 1 to 32 characters of a-z, 0-9 and '-', not starting with '-'",
        )
    return text


def _nic_from_word(word: str, key: str) -> NicConfig:
    if word.startswith("bridge:"):
        bridge = word.removeprefix("bridge:")
        if not bridge or len(bridge) > 15 or "/" in bridge or " " in bridge:
            raise ConfigError(key, word, "not a bridge name (at most 15 characters)")
        return NicConfig(bridge=bridge)
    return NicConfig(network=validate_network_name(word, key))


def _nic(raw: object, key: str) -> NicConfig:
    if isinstance(raw, str):
        return _nic_from_word(raw, key)
    if not isinstance(raw, Mapping):
        raise ConfigError(key, raw, "expected a network name or a mapping")
    unknown = set(raw) - {"network", "bridge", "ip", "gateway", "mac"}
    if unknown:
        bad = sorted(unknown, key=str)[0]
        raise ConfigError(f"{key}.{bad}", raw[bad], "unknown NIC setting")
    network, bridge = raw.get("network"), raw.get("bridge")
    if (network is None) == (bridge is None):
        raise ConfigError(key, dict(raw), "give a NIC either a network or a bridge")
    nic = (
        NicConfig(network=validate_network_name(network, f"{key}.network"))
        if network is not None
        else _nic_from_word(f"bridge:{bridge}", f"{key}.bridge")
    )
    ip = _ip(raw.get("ip"), f"{key}.ip", with_prefix=bridge is not None)
    gateway = raw.get("gateway")
    if gateway is not None:
        if bridge is None:
            raise ConfigError(
                f"{key}.gateway", gateway, "a managed network's gateway is its own; drop it"
            )
        gateway = str(_address(gateway, f"{key}.gateway"))
    mac = raw.get("mac")
    if mac is not None:
        mac = parse_mac(mac, f"{key}.mac")
    return NicConfig(nic.network, nic.bridge, ip, gateway, mac)


def _address(value: object, key: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        raise ConfigError(key, value, "not an IPv4 address") from None


def _ip(value: object, key: str, *, with_prefix: bool) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if with_prefix:
        try:
            iface = ipaddress.IPv4Interface(text)
        except ValueError:
            raise ConfigError(key, value, "not an IPv4 address with its prefix") from None
        if "/" not in text:
            raise ConfigError(
                key, value, "give the prefix on a bridge: A.B.C.D/N", hint="e.g. 192.168.1.5/24"
            )
        return str(iface)
    if "/" in text:
        raise ConfigError(
            key, value, "a managed network has its own prefix: give the address alone"
        )
    return str(_address(text, key))


def parse_mac(value: object, key: str = "mac") -> str:
    text = str(value).strip().lower().replace("-", ":")
    parts = text.split(":")
    if len(parts) != 6 or not all(
        len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts
    ):
        raise ConfigError(key, value, "not a MAC address", hint="e.g. 02:00:0a:4d:00:0a")
    first = int(parts[0], 16)
    if first & 1:
        raise ConfigError(key, value, "a multicast MAC cannot be a NIC's address")
    return text


def normalise_publish(value: object, key: str = "net.publish") -> str:
    from netctl.errors import NetError
    from netctl.ports import parse_publish

    try:
        return str(parse_publish(str(value)))
    except NetError as exc:
        raise ConfigError(key, value, exc.message.split(": ", 1)[-1], hint=exc.hint) from None


def parse_net(raw: object, *, default: NetConfig) -> NetConfig:
    """The ``net`` key: a word, a list of NICs, or a mapping; None gives *default*."""
    if raw is None:
        return default
    if isinstance(raw, str):
        if raw in ("none", "host"):
            return NetConfig(mode=raw)
        return NetConfig(mode="nics", nics=(_nic_from_word(raw, "net"),))
    if isinstance(raw, list | tuple):
        raw = {"nics": list(raw)}
    if not isinstance(raw, Mapping):
        raise ConfigError("net", raw, "expected none, host, a network name or a mapping")
    if "mode" in raw and raw.get("mode") in ("none", "host"):
        return NetConfig(mode=str(raw["mode"]))
    if raw.get("mode") == "bridge":  # schema 1: {mode: bridge, bridge, address, gateway}
        if not raw.get("bridge"):
            raise ConfigError("net.bridge", None, "bridge mode needs a bridge name")
        nic: dict[str, Any] = {"bridge": raw["bridge"]}
        if raw.get("address"):
            nic["ip"] = raw["address"]
        if raw.get("gateway"):
            nic["gateway"] = raw["gateway"]
        raw = {"nics": [nic]}
    unknown = set(raw) - {"nics", "publish", "keep_ip", "mode"}
    if unknown:
        bad = sorted(unknown, key=str)[0]
        raise ConfigError(f"net.{bad}", raw[bad], "unknown net setting")
    if raw.get("mode") not in (None, "nics"):
        raise ConfigError("net.mode", raw.get("mode"), "expected none, host, bridge or nics")
    nics_raw = raw.get("nics")
    keep_ip = raw.get("keep_ip", False)
    if not isinstance(keep_ip, bool):
        raise ConfigError("net.keep_ip", keep_ip, "expected true or false")
    if nics_raw is None:
        nics: tuple[NicConfig, ...] = default.nics if default.mode == "nics" else ()
    elif isinstance(nics_raw, list | tuple):
        nics = tuple(_nic(item, f"net.nics[{i}]") for i, item in enumerate(nics_raw))
    else:
        raise ConfigError("net.nics", nics_raw, "expected a list of NICs")
    if len(nics) > 8:
        raise ConfigError("net.nics", len(nics), "at most 8 NICs")
    publish_raw = raw.get("publish") or ()
    if isinstance(publish_raw, str):
        publish_raw = [publish_raw]
    if not isinstance(publish_raw, Sequence):
        raise ConfigError("net.publish", publish_raw, "expected a list of HOSTPORT:CONTAINERPORT")
    publish = tuple(normalise_publish(p, f"net.publish[{i}]") for i, p in enumerate(publish_raw))
    if publish and not nics and not keep_ip:
        raise ConfigError(
            "net.publish", publish[0], "a published port needs a NIC", hint="add --net NETWORK"
        )
    if publish and nics and nics[0].network is None:
        raise ConfigError(
            "net.publish",
            publish[0],
            "ports are published to the first NIC, which must be on a managed network",
            hint="put a managed network first: --net richc0 --net bridge:BR",
        )
    if len(set(publish)) != len(publish):
        raise ConfigError("net.publish", list(publish), "a port is published twice")
    if not nics and not keep_ip:
        return NetConfig(mode="none")
    return NetConfig(mode="nics", nics=nics, publish=publish, keep_ip=keep_ip)


def from_flags(
    nets: Sequence[str],
    ips: Sequence[str],
    macs: Sequence[str],
    publish: Sequence[str],
    keep_ip: bool,
) -> Any:
    """``--net A --net B --ip X --ip Y --mac M --publish P --keep-ip`` as a ``net`` value
    (None when no flag was given, so a config file's ``net`` stands). The n-th --ip and
    --mac go to the n-th --net."""
    if not (nets or ips or macs or publish or keep_ip):
        return None
    if len(ips) > max(len(nets), 1) or len(macs) > max(len(nets), 1):
        raise ConfigError("--ip", list(ips) or list(macs), "more --ip or --mac than --net")
    if len(nets) == 1 and nets[0] in ("none", "host"):
        if ips or macs or publish or keep_ip:
            raise ConfigError("--net", nets[0], "--ip, --mac, --publish and --keep-ip need a NIC")
        return nets[0]
    nics: list[dict[str, Any]] = []
    for index, word in enumerate(nets or ([DEFAULT_NETWORK] if (ips or macs or publish) else [])):
        if word in ("none", "host"):
            raise ConfigError("--net", word, f"{word} cannot be combined with other --net")
        nic: dict[str, Any] = (
            {"bridge": word.removeprefix("bridge:")}
            if word.startswith("bridge:")
            else {"network": word}
        )
        if index < len(ips):
            nic["ip"] = ips[index]
        if index < len(macs):
            nic["mac"] = macs[index]
        nics.append(nic)
    out: dict[str, Any] = {}
    if nics:
        out["nics"] = nics
    if publish:
        out["publish"] = list(publish)
    if keep_ip:
        out["keep_ip"] = True
    return out
