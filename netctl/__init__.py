"""Host-side networking for rich containers: managed bridges with NAT, one dnsmasq per
network for DHCP and DNS, veth NICs, published ports through one nftables table of richc's
own, and the static address a migrated VM's config gives it.

Standalone: imports the stdlib and itself only; pyroute2 (netlink) is imported lazily
inside the functions that talk to the kernel, nftables is driven through ``nft -j``.
Modules: ``ipam`` and ``ports`` (pure planning), ``bridge``, ``veth``, ``nft``, ``dnsmasq``,
``guestcfg`` (pure, reads a rootfs), ``sysctl``, and ``network``, the facade richc uses.
"""

from netctl.errors import (
    AddressConflict,
    GuestConfigError,
    InvalidAddress,
    InvalidPort,
    InvalidSubnet,
    LinkError,
    NetError,
    NotOurs,
    PortConflict,
    SubnetOverlap,
    ToolFailed,
    ToolMissing,
)

__all__ = [
    "AddressConflict",
    "GuestConfigError",
    "InvalidAddress",
    "InvalidPort",
    "InvalidSubnet",
    "LinkError",
    "NetError",
    "NotOurs",
    "PortConflict",
    "SubnetOverlap",
    "ToolFailed",
    "ToolMissing",
]
