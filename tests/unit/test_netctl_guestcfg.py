"""netctl.guestcfg: the static address a VM's own network config gives it, one rootfs per
format, made in tmp_path."""

from __future__ import annotations

import os
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml

from netctl.errors import GuestConfigError
from netctl.guestcfg import GuestNet, StaticAddress, no_yaml, read_static


def rootfs(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "rootfs"
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    root.mkdir(exist_ok=True)
    return root


def only(found: GuestNet) -> StaticAddress:
    assert len(found.static) == 1, found
    return found.static[0]


def test_ifupdown_static_with_netmask(tmp_path: Path) -> None:
    root = rootfs(
        tmp_path,
        {
            "/etc/network/interfaces": (
                "auto lo\niface lo inet loopback\n\n"
                "# the VM's NIC\nauto eth0\niface eth0 inet static\n"
                "    address 192.168.10.5\n    netmask 255.255.255.0\n"
                "    gateway 192.168.10.1\n    dns-nameservers 192.168.10.2 9.9.9.9\n"
                "\nsource-directory interfaces.d\n"
            ),
        },
    )
    got = only(read_static(root))
    assert got == StaticAddress(
        "eth0",
        IPv4Address("192.168.10.5"),
        24,
        IPv4Address("192.168.10.1"),
        ("192.168.10.2", "9.9.9.9"),
        "/etc/network/interfaces",
    )
    assert str(got.interface) == "192.168.10.5/24" and str(got.network) == "192.168.10.0/24"


def test_ifupdown_cidr_in_interfaces_d_and_dhcp_noted(tmp_path: Path) -> None:
    root = rootfs(
        tmp_path,
        {
            "/etc/network/interfaces": "source /etc/network/interfaces.d/*\n"
            "allow-hotplug eth1\niface eth1 inet dhcp\n",
            "/etc/network/interfaces.d/eth0": "iface eth0 inet static\n address 10.1.2.3/16\n",
            "/etc/network/interfaces.d/old": "iface eth0 inet static\n address 10.9.0.1/8\n",
        },
    )
    found = read_static(root)
    # `source` takes a glob: every file it matches counts, in name order.
    assert [(s.iface, str(s.interface), s.gateway) for s in found.static] == [
        ("eth0", "10.1.2.3/16", None),
        ("eth0", "10.9.0.1/8", None),
    ]
    assert [s.reason for s in found.skipped] == ["eth1 uses DHCP (inet dhcp)"]


def test_ifupdown_dhcp_only_gives_nothing_with_a_reason(tmp_path: Path) -> None:
    root = rootfs(tmp_path, {"/etc/network/interfaces": "auto eth0\niface eth0 inet dhcp\n"})
    found = read_static(root)
    assert found.static == []
    assert found.skipped[0].source == "/etc/network/interfaces"


def test_networkd(tmp_path: Path) -> None:
    root = rootfs(
        tmp_path,
        {
            "/etc/systemd/network/10-eth0.network": (
                "[Match]\nName=eth0\n\n[Network]\nAddress=10.20.0.7/24\nGateway=10.20.0.1\n"
                "DNS=10.20.0.2\nDNS=10.20.0.3\n\n[Address]\nAddress=10.20.1.7/24\n"
                "[Address]\nAddress=fd00::7/64\n"
            ),
            "/etc/systemd/network/20-dhcp.network": "[Match]\nName=en*\n[Network]\nDHCP=yes\n",
            # Overridden by the same name in /etc: never read.
            "/usr/lib/systemd/network/10-eth0.network": "[Network]\nAddress=1.2.3.4/8\n",
        },
    )
    found = read_static(root)
    assert [(s.iface, str(s.interface), str(s.gateway), s.dns) for s in found.static] == [
        ("eth0", "10.20.0.7/24", "10.20.0.1", ("10.20.0.2", "10.20.0.3")),
        ("eth0", "10.20.1.7/24", "10.20.0.1", ("10.20.0.2", "10.20.0.3")),
    ]
    assert [s.reason for s in found.skipped] == ["en* uses DHCP (DHCP=yes)"]


def test_networkd_gateway_from_a_route_section(tmp_path: Path) -> None:
    root = rootfs(
        tmp_path,
        {
            "/etc/systemd/network/eth0.network": (
                "[Match]\nName=eth0\n[Network]\nAddress=10.20.0.7/24\n"
                "[Route]\nDestination=10.99.0.0/16\nGateway=10.20.0.99\n"
                "[Route]\nGateway=10.20.0.1\n"
            )
        },
    )
    assert only(read_static(root)).gateway == IPv4Address("10.20.0.1")


NETPLAN = """
network:
  version: 2
  ethernets:
    ens3:
      match: {macaddress: "52:54:00:12:34:56"}
      set-name: eth0
      addresses: [10.30.0.5/24, "fd00::5/64"]
      routes:
        - to: default
          via: 10.30.0.1
      nameservers:
        addresses: [10.30.0.2]
    ens4:
      dhcp4: true
"""


def test_netplan_with_a_yaml_loader(tmp_path: Path) -> None:
    root = rootfs(tmp_path, {"/etc/netplan/50-cloud-init.yaml": NETPLAN})
    found = read_static(root, load_yaml=yaml.safe_load)
    got = only(found)
    assert (got.iface, str(got.interface), str(got.gateway), got.dns) == (
        "eth0",
        "10.30.0.5/24",
        "10.30.0.1",
        ("10.30.0.2",),
    )
    assert [s.reason for s in found.skipped] == ["ens4 uses DHCP (dhcp4: true)"]


def test_netplan_gateway4_and_mapping_addresses(tmp_path: Path) -> None:
    text = (
        "network:\n  ethernets:\n    eth0:\n      addresses:\n"
        "        - 10.31.0.5/24:\n            label: eth0:0\n      gateway4: 10.31.0.1\n"
    )
    root = rootfs(tmp_path, {"/etc/netplan/01.yaml": text})
    got = only(read_static(root, load_yaml=yaml.safe_load))
    assert (str(got.interface), str(got.gateway)) == ("10.31.0.5/24", "10.31.0.1")


def test_netplan_without_a_loader_is_skipped_with_the_reason(tmp_path: Path) -> None:
    root = rootfs(tmp_path, {"/etc/netplan/50.yaml": NETPLAN})
    found = read_static(root)
    assert found.static == []
    assert "YAML loader" in found.skipped[0].reason
    with pytest.raises(GuestConfigError) as info:
        no_yaml("")
    assert info.value.hint and "load_yaml" in info.value.hint


def test_networkmanager_keyfile(tmp_path: Path) -> None:
    root = rootfs(
        tmp_path,
        {
            "/etc/NetworkManager/system-connections/Wired.nmconnection": (
                "[connection]\nid=Wired connection 1\ntype=ethernet\ninterface-name=eth0\n\n"
                "[ipv4]\nmethod=manual\naddress1=10.40.0.5/24,10.40.0.1\n"
                "address2=10.40.1.5/24\ndns=10.40.0.2;10.40.0.3;\n\n[ipv6]\nmethod=auto\n"
            ),
            "/etc/NetworkManager/system-connections/dhcp.nmconnection": (
                "[connection]\nid=dhcp\n[ipv4]\nmethod=auto\n"
            ),
        },
    )
    found = read_static(root)
    assert [(s.iface, str(s.interface), str(s.gateway), s.dns) for s in found.static] == [
        ("eth0", "10.40.0.5/24", "10.40.0.1", ("10.40.0.2", "10.40.0.3")),
        ("eth0", "10.40.1.5/24", "None", ("10.40.0.2", "10.40.0.3")),
    ]
    assert [s.reason for s in found.skipped] == ["dhcp uses DHCP (method=auto)"]


def test_networkmanager_gateway_key(tmp_path: Path) -> None:
    root = rootfs(
        tmp_path,
        {
            "/etc/NetworkManager/system-connections/a.nmconnection": (
                "[connection]\nid=a\n[ipv4]\nmethod=manual\naddresses1=10.41.0.5/24\n"
                "gateway=10.41.0.1\n"
            )
        },
    )
    assert only(read_static(root)).gateway == IPv4Address("10.41.0.1")


def test_redhat_ifcfg(tmp_path: Path) -> None:
    root = rootfs(
        tmp_path,
        {
            "/etc/sysconfig/network-scripts/ifcfg-eth0": (
                'DEVICE=eth0\nBOOTPROTO=none\nONBOOT=yes\nIPADDR="10.50.0.5"\n'
                "NETMASK=255.255.254.0\nGATEWAY=10.50.0.1\nDNS1=10.50.0.2\n"
            ),
            "/etc/sysconfig/network-scripts/ifcfg-eth1": "DEVICE=eth1\nBOOTPROTO=dhcp\n",
            "/etc/sysconfig/network-scripts/ifcfg-lo": "DEVICE=lo\nIPADDR=127.0.0.1\n",
        },
    )
    found = read_static(root)
    got = only(found)
    assert (got.iface, str(got.interface), str(got.gateway), got.dns) == (
        "eth0",
        "10.50.0.5/23",
        "10.50.0.1",
        ("10.50.0.2",),
    )
    assert [s.reason for s in found.skipped] == ["eth1 uses DHCP (BOOTPROTO=dhcp)"]


def test_nothing_configured(tmp_path: Path) -> None:
    found = read_static(rootfs(tmp_path, {}))
    assert found.static == [] and found.skipped == []


def test_absolute_symlinks_stay_inside_the_rootfs(tmp_path: Path) -> None:
    # The guest's /etc/network/interfaces -> /srv/net/interfaces means ITS /srv, never the
    # host's; a link out of the tree (../../..) stops at the rootfs too.
    root = rootfs(
        tmp_path,
        {"/srv/net/interfaces": "iface eth0 inet static\n address 10.60.0.5/24\n"},
    )
    (root / "etc/network").mkdir(parents=True)
    os.symlink("/srv/net/interfaces", root / "etc/network/interfaces")
    assert str(only(read_static(root)).interface) == "10.60.0.5/24"
    (root / "etc/network/interfaces").unlink()
    os.symlink("../../../../../../etc/hostname", root / "etc/network/interfaces")
    assert read_static(root).static == []
