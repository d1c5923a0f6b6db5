"""vmimport.livehost against a "remote host" on this machine: sshd in its own network
namespace, reached over a veth pair, serving a small tree with hard links, xattrs, an
ACL, a sparse file, a file owned by uid 1234 and a tmpfs mounted inside it. Copied, then
changed remotely and synced again."""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import vmimport
from vmimport import SourceUnreachable, SshOptions, SshSource

pytestmark = pytest.mark.integration

SSHD = "/usr/sbin/sshd"
PRIVSEP = Path("/run/sshd")  # sshd insists on its privilege-separation directory
MIB = 1 << 20

# system.posix_acl_access (<linux/posix_acl_xattr.h>): version 2, then (tag, perm, id):
# user::rw-, user:1234:r--, group::r--, mask::r--, other::---.
ACL = struct.pack("<I", 2) + b"".join(
    struct.pack("<HHI", tag, perm, ident)
    for tag, perm, ident in (
        (0x01, 6, 0xFFFFFFFF),
        (0x02, 4, 1234),
        (0x04, 4, 0xFFFFFFFF),
        (0x10, 4, 0xFFFFFFFF),
        (0x20, 0, 0xFFFFFFFF),
    )
)


def sh(*argv: str | os.PathLike[str]) -> str:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=True).stdout


@dataclass(frozen=True)
class Remote:
    source: SshSource
    options: SshOptions
    tree: Path
    netns: str


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


def _fill(tree: Path) -> None:
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hostname").write_text("remote\n")
    (tree / "etc/motd").write_text("version 1\n")
    (tree / "etc/gone").write_text("removed before the second sync\n")
    (tree / "bin").mkdir()
    (tree / "bin/tool").write_text("#!/bin/sh\n")
    os.link(tree / "bin/tool", tree / "bin/tool-alias")
    (tree / "bin/tool-link").symlink_to("tool")
    owned = tree / "srv-data"
    owned.write_text("owned by 1234\n")
    os.chown(owned, 1234, 1234)
    os.setxattr(owned, "user.origin", b"remote")
    os.setxattr(owned, "system.posix_acl_access", ACL)
    with open(tree / "sparse.img", "wb") as f:
        f.truncate(64 * MIB)
        f.seek(32 * MIB)
        f.write(b"data in the middle")
    for name in ("proc", "mnt/share"):
        (tree / name).mkdir(parents=True)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    for tool in (SSHD, "ssh", "ssh-keygen", "rsync", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing (apt-get install openssh-server openssh-client rsync)")
    work = tmp_path_factory.mktemp("livehost")
    tree = work / "remote-tree"
    _fill(tree)
    share = tree / "mnt/share"
    sh("mount", "-t", "tmpfs", "-o", "size=1M", "rt-share", share)
    (share / "on-a-tmpfs").write_text("must not be copied\n")

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
        subprocess.run(["umount", share], capture_output=True)
        if made_privsep:
            PRIVSEP.rmdir()


def test_copy_then_incremental_sync(remote: Remote, tmp_path: Path) -> None:
    dest = tmp_path / "rootfs"
    seen: list[tuple[int, int | None, str]] = []
    result = vmimport.sync(remote.source, dest, remote.options, progress=lambda *a: seen.append(a))
    assert (dest / "etc/motd").read_text() == "version 1\n"
    # Hard links, symlinks, numeric owners, xattrs, ACLs and holes survive.
    assert (dest / "bin/tool").stat().st_ino == (dest / "bin/tool-alias").stat().st_ino
    assert os.readlink(dest / "bin/tool-link") == "tool"
    owned = dest / "srv-data"
    assert (owned.stat().st_uid, owned.stat().st_gid) == (1234, 1234)
    assert os.getxattr(owned, "user.origin") == b"remote"
    assert os.getxattr(owned, "system.posix_acl_access") == ACL
    sparse = (dest / "sparse.img").stat()
    assert sparse.st_size == 64 * MIB and sparse.st_blocks * 512 < MIB
    # The tmpfs mounted inside the tree is left out, its mount point is kept.
    assert (dest / "mnt/share").is_dir() and not (dest / "mnt/share/on-a-tmpfs").exists()
    assert str(remote.tree / "mnt/share") in [m.target for m in result.skipped]
    assert {"target": str(remote.tree / "mnt/share"), "fstype": "tmpfs"} in result.report()[
        "skipped_mounts"
    ]
    assert seen and all(what == f"copying {remote.source}" for _, _, what in seen)
    assert seen[-1][0] > 64 * 1024  # rsync counted the bytes it sent

    (remote.tree / "etc/motd").write_text("version 2, longer\n")
    (remote.tree / "etc/gone").unlink()
    (remote.tree / "etc/new").write_text("added\n")
    seen.clear()
    vmimport.sync(str(remote.source), dest, remote.options, progress=lambda *a: seen.append(a))
    assert (dest / "etc/motd").read_text() == "version 2, longer\n"
    assert not (dest / "etc/gone").exists()
    assert (dest / "etc/new").read_text() == "added\n"
    # Incremental: only the changed bytes went over the wire this time.
    assert seen and seen[-1][0] < 1024


def test_files_the_remote_user_cannot_read_are_a_clear_error(
    remote: Remote, tmp_path: Path
) -> None:
    # Logged in as root, but the remote rsync runs as nobody: what a non-root login meets.
    unreadable = remote.tree / "etc/shadow-like"
    unreadable.write_text("secret\n")
    unreadable.chmod(0o600)
    for parent in reversed(unreadable.parents):  # the way there is open to anyone
        if str(parent).startswith(str(remote.tree.parent.parent)):
            parent.chmod(parent.stat().st_mode | 0o005)
    options = SshOptions(
        identity_file=remote.options.identity_file,
        known_hosts=remote.options.known_hosts,
        remote_rsync="setpriv --reuid=65534 --regid=65534 --clear-groups rsync",
    )
    try:
        with pytest.raises(vmimport.CopyIncomplete, match="could not be read") as err:
            vmimport.sync(remote.source, tmp_path / "d", options)
        assert "Permission denied" in str(err.value) and "sudo" in (err.value.hint or "")
    finally:
        unreadable.unlink()


def test_unreachable_or_refused_login_is_a_clear_error(remote: Remote, tmp_path: Path) -> None:
    wrong_port = SshSource("root", remote.source.host, 2, remote.source.path)
    with pytest.raises(SourceUnreachable, match="cannot log in") as err:
        vmimport.sync(wrong_port, tmp_path / "d", remote.options)
    assert "ssh -p 2" in (err.value.hint or "")
    stranger = SshOptions(identity_file=tmp_path / "none", known_hosts=remote.options.known_hosts)
    with pytest.raises(SourceUnreachable, match="Permission denied"):
        vmimport.sync(remote.source, tmp_path / "d", stranger)
