"""A "remote host" on this machine for live-host migration tests: sshd in its own network
namespace, reached over a veth pair from a /30 no host route uses, logging in root with a
key made for the test and serving whatever tree the test names as the path to copy."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vmimport import SshOptions, SshSource

SSHD = "/usr/sbin/sshd"
PRIVSEP = Path("/run/sshd")  # sshd insists on its privilege-separation directory


def sh(*argv: str | os.PathLike[str]) -> str:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=True).stdout


@dataclass(frozen=True)
class Remote:
    source: SshSource
    options: SshOptions
    tree: Path
    netns: str

    @property
    def url(self) -> str:
        return str(self.source)


def need_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    for tool in (SSHD, "ssh", "ssh-keygen", "rsync", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing (apt-get install openssh-server openssh-client rsync)")


def _free_subnet() -> ipaddress.IPv4Network:
    used = [
        ipaddress.ip_network(line.split()[0], strict=False)
        for line in sh("ip", "-4", "route").splitlines()
        if line.split()[0][0].isdigit()
    ]
    for _ in range(50):
        net = ipaddress.IPv4Network(f"10.241.{secrets.randbelow(256)}.0/30")
        if not any(net.overlaps(u) for u in used):
            return net
    pytest.skip("no free 10.241.x.0/30 subnet")


def _wait_for_port(address: str, port: int, sshd: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sshd.poll() is not None:
            raise RuntimeError(f"sshd exited with {sshd.returncode}")
        try:
            with socket.create_connection((address, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("sshd did not start listening")


@contextlib.contextmanager
def ssh_server(tree: Path, work: Path) -> Iterator[Remote]:
    """Serve *tree* over ssh from a fresh network namespace; everything goes afterwards."""
    need_tools()
    net = _free_subnet()
    host_ip, ns_ip = (str(a) for a in list(net.hosts())[:2])
    tag = secrets.token_hex(3)
    netns, veth = f"rt{tag}", f"rt{tag}h"
    made_privsep = not PRIVSEP.exists()
    sshd: subprocess.Popen[bytes] | None = None
    try:
        sh("ip", "netns", "add", netns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", veth)
        sh("ip", "link", "set", veth, "up")
        for argv in (
            ["addr", "add", f"{ns_ip}/30", "dev", "eth0"],
            ["link", "set", "eth0", "up"],
            ["link", "set", "lo", "up"],
        ):
            sh("ip", "-n", netns, *argv)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", work / "host_key")
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", work / "id")
        (work / "authorized_keys").write_text((work / "id.pub").read_text())
        host_pub = (work / "host_key.pub").read_text().split()[:2]
        (work / "known_hosts").write_text(f"{ns_ip} {' '.join(host_pub)}\n")
        (work / "sshd_config").write_text(
            f"ListenAddress {ns_ip}\nPort 22\nHostKey {work / 'host_key'}\n"
            f"AuthorizedKeysFile {work / 'authorized_keys'}\nPidFile none\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        )
        PRIVSEP.mkdir(mode=0o755, exist_ok=True)
        sshd = subprocess.Popen(
            ["ip", "netns", "exec", netns, SSHD, "-D", "-e", "-f", str(work / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stderr=open(work / "sshd.log", "wb"),  # noqa: SIM115
        )
        _wait_for_port(ns_ip, 22, sshd)
        yield Remote(
            SshSource("root", ns_ip, 22, str(tree)),
            SshOptions(identity_file=work / "id", known_hosts=work / "known_hosts"),
            tree,
            netns,
        )
    finally:
        if sshd is not None:
            # `ip netns exec` execs sshd, so this pid is sshd's own.
            os.kill(sshd.pid, signal.SIGTERM)
            sshd.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)  # takes the veth too
        if made_privsep:
            with contextlib.suppress(OSError):
                PRIVSEP.rmdir()
