"""A network's published containers: dnsmasq's static leases and DNS records, and the
leases of NICs that are gone. Only dnsmasq's files and signals are involved, not the bridge
or nftables, so a caller that publishes names (richc's create and rm) imports this alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address
from pathlib import Path

from netctl import dnsmasq


def set_hosts(
    network: str,
    entries: Mapping[str, tuple[IPv4Address | None, str | None]],
    state_dir: Path,
    run_dir: Path,
) -> bool:
    """Publish the containers of *network*: name -> (static address or None, MAC or None).
    A MAC with an address is a static lease; an address is a DNS record. Reloads dnsmasq
    when something changed; True if so."""
    files = dnsmasq.Paths.under(Path(state_dir), Path(run_dir), network)
    items = [dnsmasq.HostEntry(name, addr, mac) for name, (addr, mac) in entries.items()]
    changed = dnsmasq.write_if_changed(files.dhcp_hosts, dnsmasq.render_dhcp_hosts(items))
    changed = dnsmasq.write_if_changed(files.hosts, dnsmasq.render_hosts(items)) or changed
    if changed:
        dnsmasq.reload(files)
    return changed


def release(network: str, macs: Iterable[str], state_dir: Path, run_dir: Path) -> bool:
    """Drop the DHCP leases of *macs* (a removed container's NICs), restarting dnsmasq if
    it held any; True if so. Call after set_hosts no longer lists the container."""
    return dnsmasq.drop_leases(dnsmasq.Paths.under(Path(state_dir), Path(run_dir), network), macs)
