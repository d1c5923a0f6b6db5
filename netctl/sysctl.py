"""The few kernel network switches netctl flips, read and written through /proc/sys."""

from __future__ import annotations

from pathlib import Path

from netctl.errors import NetError

PROC_SYS = Path("/proc/sys/net")


def read(key: str, root: Path = PROC_SYS) -> str:
    """``read("ipv4/ip_forward")`` -> "1"."""
    return (root / key).read_text().strip()


def write(key: str, value: str, root: Path = PROC_SYS) -> None:
    path = root / key
    try:
        if path.read_text().strip() == value:
            return
        path.write_text(value + "\n")
    except OSError as err:
        raise NetError(
            f"cannot set {path} to {value}: {err.strerror}",
            hint="netctl must run as root in the host's network namespace",
        ) from err


def ip_forward() -> bool:
    return read("ipv4/ip_forward") == "1"


def enable_ip_forward() -> bool:
    """Turn IPv4 forwarding on host-wide; True when it was off. Host-wide is what a
    published port reached from outside needs: the kernel decides whether to forward by
    the *incoming* link (eth0), not the bridge. netctl never turns it off again: other
    software may have come to rely on it."""
    was_off = not ip_forward()
    write("ipv4/ip_forward", "1")
    return was_off


def set_link(link: str, key: str, value: str, family: str = "ipv4") -> None:
    """A per-link switch, e.g. ``set_link("richc0", "route_localnet", "1")``."""
    write(f"{family}/conf/{link}/{key}", value)


def get_link(link: str, key: str, family: str = "ipv4") -> str:
    return read(f"{family}/conf/{link}/{key}")
