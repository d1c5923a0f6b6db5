"""vmimport.livehost against a "remote host" on this machine: sshd in its own network
namespace, reached over a veth pair, serving a small tree with hard links, xattrs, an
ACL, a sparse file, a file owned by uid 1234 and a tmpfs mounted inside it. Copied, then
changed remotely and synced again."""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import vmimport
from tests.integration.sshhost import Remote, need_tools, sh, ssh_server
from vmimport import SourceUnreachable, SshOptions, SshSource

pytestmark = pytest.mark.integration

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
    need_tools()
    work = tmp_path_factory.mktemp("livehost")
    tree = work / "remote-tree"
    _fill(tree)
    share = tree / "mnt/share"
    sh("mount", "-t", "tmpfs", "-o", "size=1M", "rt-share", share)
    (share / "on-a-tmpfs").write_text("must not be copied\n")
    try:
        with ssh_server(tree, work) as server:
            yield server
    finally:
        subprocess.run(["umount", share], capture_output=True)


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
