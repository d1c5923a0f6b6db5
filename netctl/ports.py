"""Published ports: parsing ``--publish``, refusing two containers on one host port (pure),
and refusing a port a host process already listens on (reads /proc/net)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from netctl.errors import InvalidPort, PortConflict


class Proto(enum.StrEnum):
    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True)
class PortRequest:
    """``--publish [HOSTIP:]HOSTPORT:CONTAINERPORT[/PROTO]`` as parsed; ``host_ip`` None
    means every local address of the host."""

    host_port: int
    container_port: int
    proto: Proto = Proto.TCP
    host_ip: IPv4Address | None = None

    def __str__(self) -> str:
        host = f"{self.host_ip}:" if self.host_ip is not None else ""
        return f"{host}{self.host_port}:{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class PublishedPort:
    """A port request bound to a NIC: what the nftables rules are made from. ``owner`` names
    the container (for conflict messages and ``richc port``), ``bridge`` the network's
    bridge the container address sits behind."""

    host_port: int
    container_port: int
    container_addr: IPv4Address
    bridge: str
    owner: str
    proto: Proto = Proto.TCP
    host_ip: IPv4Address | None = None

    @classmethod
    def bind(
        cls, request: PortRequest, container_addr: IPv4Address, bridge: str, owner: str
    ) -> PublishedPort:
        return cls(
            host_port=request.host_port,
            container_port=request.container_port,
            container_addr=container_addr,
            bridge=bridge,
            owner=owner,
            proto=request.proto,
            host_ip=request.host_ip,
        )

    @property
    def request(self) -> PortRequest:
        return PortRequest(self.host_port, self.container_port, self.proto, self.host_ip)


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InvalidPort(
            f"--publish {spec!r}: {text!r} is not a port number (1-65535)",
            hint="e.g. --publish 8080:80 or --publish 127.0.0.1:8080:80/tcp",
        )
    return int(text)


def parse_publish(spec: str) -> PortRequest:
    """Parse ``HOSTPORT:CONTAINERPORT[/tcp|udp]`` or ``HOSTIP:HOSTPORT:CONTAINERPORT[/...]``."""
    body, _, proto_text = spec.strip().partition("/")
    try:
        proto = Proto(proto_text.lower() or "tcp")
    except ValueError:
        raise InvalidPort(
            f"--publish {spec!r}: unknown protocol {proto_text!r}", hint="use /tcp or /udp"
        ) from None
    parts = body.split(":")
    host_ip: IPv4Address | None = None
    if len(parts) == 3:
        try:
            host_ip = IPv4Address(parts[0])
        except ValueError:
            raise InvalidPort(
                f"--publish {spec!r}: {parts[0]!r} is not an IPv4 address",
                hint="e.g. --publish 127.0.0.1:8080:80",
            ) from None
        parts = parts[1:]
        if host_ip == IPv4Address("0.0.0.0"):
            host_ip = None
    if len(parts) != 2:
        raise InvalidPort(
            f"--publish {spec!r} is not HOSTPORT:CONTAINERPORT or HOSTIP:HOSTPORT:CONTAINERPORT",
            hint="e.g. --publish 8080:80",
        )
    return PortRequest(_port(parts[0], spec), _port(parts[1], spec), proto, host_ip)


def _clash(a: PortRequest, b: PortRequest) -> bool:
    # No host address means all of them, so it clashes with any address on the same port.
    same_ip = a.host_ip is None or b.host_ip is None or a.host_ip == b.host_ip
    return same_ip and a.host_port == b.host_port and a.proto == b.proto


def check_conflicts(existing: Iterable[PublishedPort], wanted: Iterable[PortRequest]) -> None:
    """PortConflict when a *wanted* request takes a host port of *existing* (naming its
    owner) or of another wanted one."""
    seen = [(p.request, p.owner) for p in existing]
    for request in wanted:
        for other, owner in seen:
            if _clash(request, other):
                raise PortConflict(
                    f"host port {request.host_port}/{request.proto} is already published by "
                    f"{owner} ({other})",
                    holder=owner,
                    hint="choose another host port",
                )
        seen.append((request, "this container"))


# --- what the host itself listens on ---------------------------------------------------------

_TCP_LISTEN = "0A"


def parse_proc_net(text: str, proto: Proto) -> list[tuple[IPv4Address | IPv6Address, int]]:
    """The bound local (address, port) pairs of a /proc/net/{tcp,udp}[6] table: listening
    sockets for TCP, every bound socket for UDP."""
    found: list[tuple[IPv4Address | IPv6Address, int]] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        addr_hex, _, port_hex = fields[1].partition(":")
        if proto is Proto.TCP and fields[3] != _TCP_LISTEN:
            continue
        raw = bytes.fromhex(addr_hex)
        # The kernel prints each 32-bit word of the address in host (little-endian) order.
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        addr: IPv4Address | IPv6Address = (
            IPv4Address(words) if len(words) == 4 else IPv6Address(words)
        )
        port = int(port_hex, 16)
        if port:
            found.append((addr, port))
    return found


def host_listeners(proto: Proto, proc_net: Path = Path("/proc/net")) -> dict[int, list[str]]:
    """Port -> the addresses the calling process's network namespace has sockets bound to
    (listening, for TCP)."""
    ports: dict[int, list[str]] = {}
    for name in (str(proto), f"{proto}6"):
        try:
            text = (proc_net / name).read_text()
        except OSError:
            continue
        for addr, port in parse_proc_net(text, proto):
            ports.setdefault(port, []).append(str(addr))
    return ports


def check_host_ports(
    wanted: Iterable[PortRequest], listeners: Mapping[Proto, Mapping[int, list[str]]] | None = None
) -> None:
    """PortConflict when a host process already listens on a wanted host port (on the
    address asked for, a wildcard address or, for a wildcard request, any address): the
    DNAT would hide it. *listeners* defaults to the live /proc/net tables."""
    live = listeners if listeners is not None else {p: host_listeners(p) for p in Proto}
    for request in wanted:
        for addr in live.get(request.proto, {}).get(request.host_port, []):
            wildcard = addr in ("0.0.0.0", "::")
            if request.host_ip is None or wildcard or addr == str(request.host_ip):
                where = f"[{addr}]" if ":" in addr else addr
                raise PortConflict(
                    f"host port {request.host_port}/{request.proto} is in use by a process "
                    f"of the host listening on {where}:{request.host_port}",
                    holder=f"a host process on {where}:{request.host_port}",
                    hint="choose another host port, or stop that service",
                )
