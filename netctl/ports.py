"""Published ports, pure: parsing ``--publish`` and refusing two containers on one host port."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

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
