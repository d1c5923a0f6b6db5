"""The isolation package on the real kernel, without richc containers: idmapped mounts on
this host's filesystems, the ownership shift of a real tree and back, and the static escape
probe run on the host and in a user namespace made with a rendered mapping.

Every mount is made under a temporary directory and removed in a finally; the probe is
run in its own mount namespace (``unshare -m``), so its cgroup mount cannot outlive it.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from isolation import idmount, overlay, probes
from isolation.errors import ShiftConflict
from isolation.idmap import IdMap
from isolation.shift import current_offset, marker_path, read_state, shift_tree, unshift_tree
from isolation.xattrs import (
    ACL_ACCESS,
    ACL_DEFAULT,
    ACL_GROUP,
    ACL_USER,
    CAPABILITY,
    acl_ids,
    capability_rootid,
    make_acl,
)

pytestmark = pytest.mark.integration

IDMAP = IdMap.of(100000)
UNDEF = 0xFFFFFFFF


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


def in_userns(
    idmap: IdMap, argv: list[str], *, mount_ns: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run *argv* as root of a new user namespace with *idmap* (util-linux 2.38 spelling:
    outer,inner,count)."""
    cmd = [
        "unshare", "--user",
        f"--map-users={idmap.host_uid_start},0,{idmap.count}",
        f"--map-groups={idmap.host_gid_start},0,{idmap.count}",
        "--setuid", "0", "--setgid", "0",
    ]  # fmt: skip
    if mount_ns:
        cmd += ["--mount", "--propagation", "private"]
    return subprocess.run([*cmd, *argv], capture_output=True, text=True, timeout=60)


@pytest.fixture
def world() -> Iterator[Path]:
    """A temporary directory the container's root (host uid 100000) can reach: pytest's
    own tmp_path sits below a 0700 directory."""
    path = Path(tempfile.mkdtemp(prefix="richc-test-"))
    os.chmod(path, 0o755)
    yield path
    unmount_below(path)
    shutil.rmtree(path)


def unmount_below(path: Path) -> None:
    """Detach whatever a failed test left mounted below *path*, deepest first."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(f"{path}/")), reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)


# --- idmapped mounts -----------------------------------------------------------------------


def test_idmapped_bind_shows_the_mapped_owners_and_writes_land_unshifted(world: Path) -> None:
    src, dst = world / "src", world / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "root-file").write_text("x")
    (src / "user-file").write_text("y")
    os.chown(src / "user-file", 1000, 50)
    assert idmount.supports_idmap(src), idmount.supports_idmap(src).reason
    with idmount.idmapped(src, dst, IDMAP):
        assert idmount.is_mount_point(dst)
        assert os.stat(src / "root-file").st_uid == 0
        assert os.stat(dst / "root-file").st_uid == 100000
        assert (os.stat(dst / "user-file").st_uid, os.stat(dst / "user-file").st_gid) == (
            101000,
            100050,
        )
        # The container's root creates a file through the mount: it is uid 0 on disk.
        made = in_userns(IDMAP, ["sh", "-c", f"echo hi > {dst}/from-inside && id -u"])
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip() == "0"
        assert os.stat(src / "from-inside").st_uid == 0
        assert os.stat(dst / "from-inside").st_uid == 100000
        # Host root is nobody through the mount: creating a file there is refused.
        with pytest.raises(OSError):
            (dst / "from-host").write_text("no")
    assert not idmount.is_mount_point(dst)
    assert os.stat(dst).st_uid == 0 and not (dst / "root-file").exists()


def test_supports_idmap_per_filesystem(world: Path) -> None:
    found = {"ext4": idmount.supports_idmap(world)}
    tmpfs, lower, upper, work, merged = (world / n for n in ("t", "l", "u", "w", "m"))
    for d in (tmpfs, lower, upper, work, merged):
        d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(tmpfs)], check=True)
    try:
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)],
            check=True,
        )  # fmt: skip
        try:
            found["tmpfs"] = idmount.supports_idmap(tmpfs)
            found["overlay"] = idmount.supports_idmap(merged)
        finally:
            idmount.umount(merged)
    finally:
        idmount.umount(tmpfs)
    print({k: (bool(v), v.fstype, v.reason) for k, v in found.items()})
    if found["ext4"].fstype != "ext4":
        pytest.skip(f"the temporary directory is on {found['ext4'].fstype}, not ext4")
    assert found["ext4"] and found["tmpfs"]  # ext4 since 5.12, tmpfs since 6.3
    assert not found["overlay"]  # an overlay mount itself cannot be idmapped
    assert found["overlay"].fstype == "overlay"
    assert "does not support idmapped mounts" in found["overlay"].reason


def test_overlay_over_an_idmapped_lower_layer(world: Path) -> None:
    """The recipe for overlay-shared images (isolation.overlay): the shared image bound
    idmapped and read-only as the lower layer, the container's own upper layer plain, the
    overlay mounted on top. The container sees the image's files as its own, copy-up
    works, and the shared image is never written."""
    image, view, upper, work, merged = (world / n for n in ("image", "lower", "u", "w", "m"))
    for d in (image, upper, work, merged):
        d.mkdir()
    (image / "etc").mkdir()
    (image / "etc/motd").write_text("image\n")
    assert overlay.plan_ownership(image).method is overlay.Method.IDMAP
    assert overlay.own_upper(upper, IDMAP)
    assert not overlay.own_upper(upper, IDMAP)  # once
    overlay.mount_lower_view(image, view, IDMAP)
    try:
        options = overlay.overlay_options([view], upper, work)
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True
        )
        try:
            done = in_userns(
                IDMAP,
                ["sh", "-c", f"echo mine >> {merged}/etc/motd && touch {merged}/new && "
                 f"stat -c %u {merged} {merged}/etc/motd {merged}/new"],
            )  # fmt: skip
        finally:
            idmount.umount(merged)
    finally:
        overlay.unmount_lower_view(view)
    assert not idmount.is_mount_point(view)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0", "0"]  # /, a copied-up file, a new one
    assert (image / "etc/motd").read_text() == "image\n"  # the shared image is untouched
    assert os.stat(upper / "etc/motd").st_uid == IDMAP.host_uid_start  # copied up, shifted
    assert os.stat(upper / "new").st_uid == IDMAP.host_uid_start


# --- the ownership shift -------------------------------------------------------------------

CAP_NET_RAW_EP = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
ACL = make_acl(
    [(0x01, 6, UNDEF), (ACL_USER, 4, 1000), (0x04, 4, UNDEF), (ACL_GROUP, 6, 50),
     (0x10, 6, UNDEF), (0x20, 0, UNDEF)]
)  # fmt: skip


Inode = tuple[int, int, int, int, int, list[tuple[str, bytes]]]


def snapshot(tree: Path) -> dict[str, Inode]:
    """Owner, group, mode, device and every xattr of every inode below *tree*."""
    found: dict[str, Inode] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in ["", *dirnames, *filenames]:
            path = Path(dirpath) / name if name else Path(dirpath)
            rel = str(path.relative_to(tree))
            if rel in found:
                continue
            st = os.lstat(path)
            xattrs = {}
            if not stat.S_ISLNK(st.st_mode):
                for key in os.listxattr(path, follow_symlinks=False):
                    xattrs[key] = os.getxattr(path, key, follow_symlinks=False)
            found[rel] = (st.st_uid, st.st_gid, st.st_mode, st.st_rdev, st.st_ino,
                          sorted(xattrs.items()))  # fmt: skip
    return found


@pytest.fixture
def tree(world: Path) -> Iterator[Path]:
    root = world / "rootfs"
    (root / "usr/bin").mkdir(parents=True)
    (root / "dev").mkdir()
    (root / "home/user").mkdir(parents=True)
    su = root / "usr/bin/su"
    su.write_bytes(b"\x7fELF")
    os.chmod(su, 0o4755)
    sgid = root / "usr/bin/wall"
    sgid.write_bytes(b"\x7fELF")
    os.chown(sgid, 0, 5)
    os.chmod(sgid, 0o2755)
    ping = root / "usr/bin/ping"
    ping.write_bytes(b"\x7fELF")
    os.chmod(ping, 0o755)
    os.setxattr(ping, CAPABILITY, CAP_NET_RAW_EP)
    (root / "home/user/notes").write_text("hi")
    os.chown(root / "home/user", 1000, 1000)
    os.chown(root / "home/user/notes", 1000, 1000)
    os.link(root / "home/user/notes", root / "home/user/notes-link")
    os.link(su, root / "usr/bin/su-link")  # a hard-linked setuid file: shifted once
    os.setxattr(root / "home/user", ACL_ACCESS, ACL)
    os.setxattr(root / "home/user", ACL_DEFAULT, ACL)
    os.mknod(root / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(root / "dev/initctl")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "dev/log"))
    sock.close()
    os.symlink("/proc/self/fd", root / "dev/fd")
    os.lchown(root / "dev/fd", 0, 5)
    yield root


def test_shift_and_unshift_round_trip(tree: Path) -> None:
    before = snapshot(tree)
    calls: list[tuple[int, int]] = []
    result = shift_tree(tree, IDMAP.host_uid_start, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1] == result.inodes
    assert result.outside == 0 and not result.warnings
    assert current_offset(tree) == 100000
    assert marker_path(tree).exists() and not (tree / marker_path(tree).name).exists()

    after = snapshot(tree)
    assert {rel: v[:2] for rel, v in after.items()} == {
        rel: (v[0] + 100000, v[1] + 100000) for rel, v in before.items()
    }
    assert {rel: v[2:5] for rel, v in after.items()} == {rel: v[2:5] for rel, v in before.items()}
    su = os.stat(tree / "usr/bin/su")
    assert stat.S_IMODE(su.st_mode) == 0o4755 and su.st_uid == 100000  # setuid kept
    assert stat.S_IMODE(os.stat(tree / "usr/bin/wall").st_mode) == 0o2755
    assert os.lstat(tree / "dev/fd").st_gid == 100005  # the symlink itself
    cap = os.getxattr(tree / "usr/bin/ping", CAPABILITY)
    assert capability_rootid(cap) == 100000  # v3: root of the container's namespace
    assert cap[4:20] == CAP_NET_RAW_EP[4:20]
    for name in (ACL_ACCESS, ACL_DEFAULT):
        assert acl_ids(os.getxattr(tree / "home/user", name)) == [
            (ACL_USER, 101000),
            (ACL_GROUP, 100050),
        ]

    again = shift_tree(tree, IDMAP.host_uid_start)  # already there: nothing happens
    assert again.changed == 0 and snapshot(tree) == after

    back = unshift_tree(tree)
    assert back.changed == result.changed
    assert snapshot(tree) == before  # byte-identical: owners, modes, devices, xattrs
    assert not marker_path(tree).exists()


def test_an_interrupted_shift_resumes_without_shifting_twice(tree: Path) -> None:
    before = snapshot(tree)

    class Stop(Exception):
        pass

    def stop_halfway(done: int, total: int) -> None:
        raise Stop

    import isolation.shift as shift_mod

    old_every = shift_mod.PROGRESS_EVERY
    shift_mod.PROGRESS_EVERY = 5
    try:
        with pytest.raises(Stop):
            shift_tree(tree, 200000, progress=stop_halfway)
    finally:
        shift_mod.PROGRESS_EVERY = old_every
    state = read_state(tree)
    assert state.in_progress and state.target == 200000 and current_offset(tree) is None
    uids = {v[0] for v in snapshot(tree).values()}
    assert uids & {0, 1000} and uids & {200000, 201000}  # really half done

    # Resume towards another target: every id is moved by the range it is found in.
    shift_tree(tree, 300000)
    shifted = snapshot(tree)
    assert {rel: v[0] for rel, v in shifted.items()} == {
        rel: v[0] + 300000 for rel, v in before.items()
    }
    assert capability_rootid(os.getxattr(tree / "usr/bin/ping", CAPABILITY)) == 300000
    unshift_tree(tree)
    assert snapshot(tree) == before


def test_a_capability_lost_between_chown_and_restore_comes_back(tree: Path) -> None:
    """chown drops security.capability and setuid; the journal written before the chown
    puts them back when the shift is run again after a crash at the worst moment."""
    before = snapshot(tree)
    import isolation.shift as shift_mod

    real_restore = shift_mod._restore_capability

    def crash(*args: object, **kwargs: object) -> bool:
        raise KeyboardInterrupt

    shift_mod._restore_capability = crash  # type: ignore[assignment,unused-ignore]
    try:
        with pytest.raises(KeyboardInterrupt):
            shift_tree(tree, IDMAP.host_uid_start)
    finally:
        shift_mod._restore_capability = real_restore
    ping = tree / "usr/bin/ping"
    if os.stat(ping).st_uid == 100000:  # the crash hit ping after its chown
        assert CAPABILITY not in os.listxattr(ping)
    shift_tree(tree, IDMAP.host_uid_start)
    assert capability_rootid(os.getxattr(ping, CAPABILITY)) == 100000
    assert stat.S_IMODE(os.stat(tree / "usr/bin/su").st_mode) == 0o4755
    unshift_tree(tree)
    assert snapshot(tree) == before


def test_an_overlay_mount_is_never_shifted(world: Path) -> None:
    lower, upper, work, merged = (world / n for n in ("l", "u", "w", "m"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    (lower / "f").write_text("image")
    options = overlay.overlay_options([lower], upper, work)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True)
    try:
        with pytest.raises(ShiftConflict, match="overlay"):
            shift_tree(merged, IDMAP.host_uid_start)
    finally:
        idmount.umount(merged)
    assert list(upper.iterdir()) == []  # nothing was copied up


def test_the_shift_stays_on_the_trees_filesystem(tree: Path, world: Path) -> None:
    host_data = world / "host-data"
    host_data.mkdir()
    (host_data / "f").write_text("host")
    (tree / "mnt").mkdir()
    subprocess.run(["mount", "--bind", str(host_data), str(tree / "mnt")], check=True)
    try:
        shift_tree(tree, IDMAP.host_uid_start)
        assert os.stat(host_data / "f").st_uid == 0
    finally:
        idmount.umount(tree / "mnt")
    unshift_tree(tree)


# --- the escape probe ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe() -> Iterator[Path]:
    """The static probe, built once, where a user namespace's root can run it."""
    why = probes.can_build()
    if why:
        pytest.skip(why)
    out = Path(tempfile.mkdtemp(prefix="richc-test-probe-"))
    os.chmod(out, 0o755)
    yield probes.build_probe(out)
    shutil.rmtree(out)


def run_probe(argv: list[str]) -> probes.ProbeReport:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = probes.parse_report(done.stdout)
    print(probes.format_table(report))
    return report


def test_the_probe_on_the_host_sees_a_host_root(probe: Path, world: Path) -> None:
    """Smoke test: on the host every door the probe knocks on opens (or is absent from
    this kernel), so a 'denied' in a container means something. Nothing is written."""
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_text()
    report = run_probe(
        ["unshare", "--mount", "--propagation", "private", str(probe), "--tmp", str(world)]
    )
    assert report.root_host_uid == 0
    assert report.seccomp_mode == 0
    assert report["write_core_pattern"].result == "allowed"
    assert report["write_proc_sys_kernel"].result == "allowed"
    assert report["mknod_block_device"].result in ("allowed", "skipped")
    for name in ("open_by_handle_at", "bpf", "keyctl", "umount2_force"):
        assert report[name].result == "allowed", report[name]
    assert Path("/proc/sys/kernel/core_pattern").read_text() == core_pattern
    assert list(world.iterdir()) == []  # its temporary directory and node are gone


def test_the_probe_in_a_user_namespace_with_the_rendered_mapping(probe: Path, world: Path) -> None:
    idmap = IdMap.of(200000)
    os.chown(world, idmap.host_uid_start, idmap.host_gid_start)  # its root's scratch space
    done = in_userns(idmap, [str(probe), "--tmp", str(world)], mount_ns=True)
    assert done.returncode == 0, done.stderr
    report = probes.parse_report(done.stdout)
    print(probes.format_table(report))
    assert report.info["uid_map"].split() == idmap.uid_map().split()
    assert report.root_host_uid == 200000
    assert report.info["gid_map"].split() == ["0", "200000", "65536"]
    # Without seccomp or masks, the user namespace alone closes these doors:
    for name in ("write_core_pattern", "write_proc_sys_kernel", "write_sys_kernel",
                 "mknod_block_device", "cgroup_release_agent", "mount_cgroup_v1",
                 "swapoff", "acct"):  # fmt: skip
        assert report[name].result in ("denied", "absent"), report[name]
    # ... but not these, which is what richc's seccomp profile is for.
    assert report["keyctl"].result == "allowed"
    assert report["umount2_force"].result == "allowed"
    assert list(world.iterdir()) == []


def test_host_support_report(world: Path) -> None:
    from isolation.hostcheck import host_support

    report = host_support(world)
    rows = dict(report.lines())
    print(rows)
    assert report.user_namespaces and report.seccomp
    assert rows["rootfs ownership"].startswith(("idmap: ", "shift: "))
    assert not report.apparmor or report.apparmor.parser
