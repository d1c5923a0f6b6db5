"""The static IPv4 configuration a VM's own network config gives it, read from its root
filesystem (for ``--keep-ip``), pure: ifupdown, systemd-networkd, netplan, NetworkManager
keyfiles and Red Hat ifcfg files. DHCP configurations yield no address but a note saying
why, so richc can tell the user there is nothing to keep.

netplan is YAML and netctl imports only the stdlib: the caller passes a ``load_yaml``
(richc has PyYAML); without one, netplan files are reported as skipped."""

from __future__ import annotations

import configparser
import fnmatch
import os
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_interface
from pathlib import Path
from typing import Any

from netctl.errors import GuestConfigError

LoadYaml = Callable[[str], Any]


@dataclass(frozen=True)
class StaticAddress:
    """One static IPv4 address of the guest. ``source`` is the file, as the guest sees it."""

    iface: str
    address: IPv4Address
    prefix: int
    gateway: IPv4Address | None
    dns: tuple[str, ...]
    source: str

    @property
    def interface(self) -> IPv4Interface:
        return IPv4Interface(f"{self.address}/{self.prefix}")

    @property
    def network(self) -> IPv4Network:
        return self.interface.network


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass
class GuestNet:
    """What was found: the static addresses, and the files that gave none, with why."""

    static: list[StaticAddress] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def add(self, item: StaticAddress) -> None:
        if not any(s.iface == item.iface and s.address == item.address for s in self.static):
            self.static.append(item)

    def skip(self, source: str, reason: str) -> None:
        self.skipped.append(Skipped(source, reason))


def no_yaml(text: str) -> Any:
    raise GuestConfigError(
        "reading netplan files needs a YAML loader",
        hint="pass load_yaml (e.g. yaml.safe_load) to netctl.guestcfg.read_static",
    )


# --- reading files inside the rootfs -----------------------------------------------------


class _Root:
    """Paths inside a guest rootfs; symlinks are followed as the guest would, never out."""

    def __init__(self, rootfs: Path) -> None:
        self.rootfs = Path(os.path.realpath(rootfs))

    def resolve(self, guest_path: str) -> Path | None:
        current = self.rootfs
        parts = [p for p in guest_path.split("/") if p and p != "."]
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                current = current.parent if current != self.rootfs else current
                continue
            candidate = current / part
            if candidate.is_symlink():
                hops += 1
                if hops > 40:
                    return None
                target = os.readlink(candidate)
                parts = [p for p in target.split("/") if p and p != "."] + parts
                current = self.rootfs if target.startswith("/") else current
                continue
            current = candidate
        return current

    def read(self, guest_path: str) -> str | None:
        path = self.resolve(guest_path)
        if path is None or not path.is_file():
            return None
        try:
            return path.read_text(errors="replace")
        except OSError:
            return None

    def listdir(self, guest_dir: str, pattern: str = "*") -> list[str]:
        path = self.resolve(guest_dir)
        if path is None or not path.is_dir():
            return []
        names = sorted(n for n in os.listdir(path) if fnmatch.fnmatch(n, pattern))
        return [f"{guest_dir.rstrip('/')}/{n}" for n in names]


def _iface(address: str, prefix: int | None = None) -> IPv4Interface | None:
    """*address* (``10.0.0.5/24`` or ``10.0.0.5`` with *prefix*) as an interface, or None
    for IPv6 and garbage."""
    try:
        value = ip_interface(address if prefix is None or "/" in address else f"{address}/{prefix}")
    except ValueError:
        return None
    return value if isinstance(value, IPv4Interface) else None


def _addr(text: str | None) -> IPv4Address | None:
    try:
        return IPv4Address(text.strip()) if text else None
    except ValueError:
        return None


def _prefix(netmask: str | None) -> int | None:
    """A prefix length from ``255.255.255.0`` or ``24``."""
    if not netmask:
        return None
    netmask = netmask.strip()
    if netmask.isdigit():
        return int(netmask) if 0 <= int(netmask) <= 32 else None
    try:
        return IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        return None


def _dns(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        for item in re.split(r"[\s,;]+", value):
            if _addr(item) is not None and item not in out:
                out.append(item)
    return tuple(out)


# --- ifupdown ----------------------------------------------------------------------------

_STANZAS = ("iface", "auto", "mapping", "source", "source-directory", "rename")


def _ifupdown_files(root: _Root, guest_path: str, seen: set[str]) -> Iterator[tuple[str, str]]:
    if guest_path in seen:
        return
    seen.add(guest_path)
    text = root.read(guest_path)
    if text is None:
        return
    yield guest_path, text
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        if words[0] == "source":
            pattern = words[1] if words[1].startswith("/") else f"/etc/network/{words[1]}"
            directory, _, glob = pattern.rpartition("/")
            for path in root.listdir(directory or "/", glob):
                yield from _ifupdown_files(root, path, seen)
        elif words[0] in ("source-directory", "source-dir"):
            directory = words[1] if words[1].startswith("/") else f"/etc/network/{words[1]}"
            for path in root.listdir(directory):
                # run-parts naming: ifupdown skips files with dots or odd characters.
                if re.fullmatch(r"[A-Za-z0-9_-]+", path.rsplit("/", 1)[1]):
                    yield from _ifupdown_files(root, path, seen)


def _stanzas(text: str) -> Iterator[tuple[str, str, dict[str, list[str]]]]:
    """The ``iface NAME inet METHOD`` stanzas of one file with their options."""
    current: tuple[str, str, dict[str, list[str]]] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] in _STANZAS or words[0].startswith("allow-"):
            if current is not None:
                yield current
            current = None
            if words[0] == "iface" and len(words) >= 4 and words[2] == "inet":
                current = (words[1], words[3], {})
        elif current is not None and len(words) >= 2:
            current[2].setdefault(words[0], []).append(" ".join(words[1:]))
    if current is not None:
        yield current


def _ifupdown(root: _Root, found: GuestNet) -> None:
    for source, text in _ifupdown_files(root, "/etc/network/interfaces", set()):
        for iface, method, opts in _stanzas(text):
            if method in ("dhcp", "bootp"):
                found.skip(source, f"{iface} uses DHCP (inet {method})")
            if method != "static":
                continue
            prefix = _prefix((opts.get("netmask") or [""])[0])
            gateway = _addr((opts.get("gateway") or [""])[0])
            dns = _dns(opts.get("dns-nameservers", []))
            for address in opts.get("address", []):
                value = _iface(address, prefix if prefix is not None else 32)
                if value is not None:
                    found.add(
                        StaticAddress(
                            iface, value.ip, value.network.prefixlen, gateway, dns, source
                        )
                    )


# --- systemd-networkd --------------------------------------------------------------------


def _unit_sections(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """A systemd unit file as (section, key -> values) in order; sections and keys repeat."""
    sections: list[tuple[str, dict[str, list[str]]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1], {}))
        elif "=" in line and sections:
            key, _, value = line.partition("=")
            sections[-1][1].setdefault(key.strip(), []).append(value.strip())
    return sections


_NETWORKD_DIRS = (
    "/usr/lib/systemd/network",
    "/lib/systemd/network",
    "/run/systemd/network",
    "/etc/systemd/network",
)


def _networkd(root: _Root, found: GuestNet) -> None:
    by_name: dict[str, str] = {}
    # Same file name: /etc overrides /run overrides /lib.
    for directory in (
        "/usr/lib/systemd/network",
        "/lib/systemd/network",
        "/run/systemd/network",
        "/etc/systemd/network",
    ):
        for path in root.listdir(directory, "*.network"):
            by_name[path.rsplit("/", 1)[1]] = path
    for name in sorted(by_name):
        source = by_name[name]
        text = root.read(source)
        if text is None:
            continue
        sections = _unit_sections(text)
        names = [v for s, kv in sections if s == "Match" for v in kv.get("Name", [])]
        iface = " ".join(names).split()[0] if names else "*"
        addresses: list[str] = []
        gateways: list[str] = []
        dns: list[str] = []
        dhcp = ""
        for section, kv in sections:
            if section == "Network":
                addresses += kv.get("Address", [])
                gateways += kv.get("Gateway", [])
                dns += kv.get("DNS", [])
                dhcp = (kv.get("DHCP") or [dhcp])[-1]
            elif section == "Address":
                addresses += kv.get("Address", [])
            elif section == "Route" and (kv.get("Destination") or ["0.0.0.0/0"])[-1] in (
                "0.0.0.0/0",
                "",
            ):
                gateways += kv.get("Gateway", [])
        gateway = next((g for g in map(_addr, gateways) if g is not None), None)
        values = [v for v in (_iface(a) for a in addresses) if v is not None]
        for value in values:
            found.add(
                StaticAddress(iface, value.ip, value.network.prefixlen, gateway, _dns(dns), source)
            )
        if not values and dhcp.lower() in ("yes", "true", "ipv4", "both", "1"):
            found.skip(source, f"{iface} uses DHCP (DHCP={dhcp})")


# --- netplan -----------------------------------------------------------------------------


def _netplan(root: _Root, found: GuestNet, load_yaml: LoadYaml) -> None:
    by_name: dict[str, str] = {}
    for directory in ("/lib/netplan", "/etc/netplan", "/run/netplan"):
        for path in root.listdir(directory, "*.yaml"):
            by_name[path.rsplit("/", 1)[1]] = path
    for name in sorted(by_name):
        source = by_name[name]
        text = root.read(source)
        if text is None:
            continue
        try:
            doc = load_yaml(text)
        except GuestConfigError as err:
            found.skip(source, err.message)
            continue
        except Exception as err:  # the loader's own parse errors, whatever its type
            found.skip(source, f"not valid YAML: {err}")
            continue
        network = doc.get("network") if isinstance(doc, dict) else None
        if not isinstance(network, dict):
            continue
        for kind in ("ethernets", "bridges", "bonds", "vlans", "wifis"):
            devices = network.get(kind)
            if not isinstance(devices, dict):
                continue
            for dev_id, dev in devices.items():
                if isinstance(dev, dict):
                    _netplan_device(str(dev_id), dev, source, found)


def _netplan_device(dev_id: str, dev: dict[str, Any], source: str, found: GuestNet) -> None:
    iface = str(dev.get("set-name") or dev_id)
    raw = dev.get("addresses") or []
    # An address is "10.0.0.5/24" or, in newer netplan, a one-key mapping with options.
    addresses = [a for item in raw for a in (item if isinstance(item, dict) else [item])]
    gateway = _addr(str(dev.get("gateway4") or ""))
    for route in dev.get("routes") or []:
        if isinstance(route, dict) and str(route.get("to")) in ("default", "0.0.0.0/0"):
            gateway = gateway or _addr(str(route.get("via") or ""))
    nameservers = dev.get("nameservers") or {}
    dns = _dns(str(a) for a in (nameservers.get("addresses") or []))
    values = [v for v in (_iface(str(a)) for a in addresses) if v is not None]
    for value in values:
        found.add(StaticAddress(iface, value.ip, value.network.prefixlen, gateway, dns, source))
    if not values and dev.get("dhcp4") in (True, "true", "yes", "on"):
        found.skip(source, f"{iface} uses DHCP (dhcp4: true)")


# --- NetworkManager keyfiles -------------------------------------------------------------


_NM_DIRS = ("/etc/NetworkManager/system-connections", "/run/NetworkManager/system-connections")


def _networkmanager(root: _Root, found: GuestNet) -> None:
    for directory in (
        "/etc/NetworkManager/system-connections",
        "/run/NetworkManager/system-connections",
    ):
        for source in root.listdir(directory):
            text = root.read(source)
            if text is None:
                continue
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            try:
                parser.read_string(text)
            except configparser.Error as err:
                found.skip(source, f"not a keyfile: {err.message}")
                continue
            if not parser.has_section("ipv4"):
                continue
            ipv4 = parser["ipv4"]
            iface = parser.get("connection", "interface-name", fallback="") or parser.get(
                "connection", "id", fallback="?"
            )
            method = ipv4.get("method", "auto")
            if method != "manual":
                if method == "auto":
                    found.skip(source, f"{iface} uses DHCP (method=auto)")
                continue
            default_gw = _addr(ipv4.get("gateway"))
            dns = _dns([ipv4.get("dns", "")])
            keys = sorted(
                (k for k in ipv4 if re.fullmatch(r"addresse?s?\d*", k)),
                key=lambda k: int(re.sub(r"\D", "", k) or 0),
            )
            for key in keys:
                for entry in ipv4[key].split(";"):
                    # address1=10.0.0.5/24,10.0.0.1: the gateway may ride along.
                    addr_text, _, gw_text = entry.strip().partition(",")
                    value = _iface(addr_text.strip(), 32) if addr_text.strip() else None
                    if value is None:
                        continue
                    gateway = _addr(gw_text) or default_gw
                    found.add(
                        StaticAddress(
                            iface, value.ip, value.network.prefixlen, gateway, dns, source
                        )
                    )


# --- Red Hat ifcfg -----------------------------------------------------------------------


def _ifcfg(root: _Root, found: GuestNet) -> None:
    for source in root.listdir("/etc/sysconfig/network-scripts", "ifcfg-*"):
        text = root.read(source)
        if text is None:
            continue
        values: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, rest = line.strip().partition("=")
            if sep and not key.startswith("#"):
                try:
                    words = shlex.split(rest)
                except ValueError:
                    words = [rest]
                values[key.strip()] = words[0] if words else ""
        iface = values.get("DEVICE") or source.rsplit("ifcfg-", 1)[1]
        if iface == "lo":
            continue
        proto = values.get("BOOTPROTO", "none").lower()
        if proto in ("dhcp", "bootp"):
            found.skip(source, f"{iface} uses DHCP (BOOTPROTO={proto})")
            continue
        dns = _dns(v for k, v in sorted(values.items()) if re.fullmatch(r"DNS\d+", k))
        for suffix in ["", *map(str, range(10))]:
            address = values.get(f"IPADDR{suffix}")
            if not address:
                continue
            prefix = _prefix(values.get(f"PREFIX{suffix}") or values.get(f"NETMASK{suffix}"))
            ifaddr = _iface(address, prefix if prefix is not None else 32)
            if ifaddr is not None:
                gateway = _addr(values.get(f"GATEWAY{suffix}") or values.get("GATEWAY"))
                found.add(
                    StaticAddress(iface, ifaddr.ip, ifaddr.network.prefixlen, gateway, dns, source)
                )


def read_static(rootfs: Path | str, *, load_yaml: LoadYaml = no_yaml) -> GuestNet:
    """Every static IPv4 address the guest at *rootfs* configures for itself, with the
    files that configure DHCP (or could not be read) in ``skipped``. Loopback is ignored."""
    root = _Root(Path(rootfs))
    found = GuestNet()
    _netplan(root, found, load_yaml)
    _networkd(root, found)
    _networkmanager(root, found)
    _ifupdown(root, found)
    _ifcfg(root, found)
    found.static = [s for s in found.static if not s.address.is_loopback]
    return found
