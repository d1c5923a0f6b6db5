"""quota backends on real kernels: btrfs on a loop-mounted btrfs image, loop images on the
host filesystem, and the errors a user meets where a backend cannot work.

Writes go through ``setpriv`` without CAP_SYS_RESOURCE: a process holding it walks past
ext4 quota and reserved blocks, and a container's root must not hold it either.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import quota
from quota import btrfsctl, loopdev
from quota.loop import image_path
from quota.mounts import MNT_DETACH, find_mount, is_mount_point, mount, umount

pytestmark = pytest.mark.integration

MiB = 1 << 20
NO_SYS_RESOURCE = ["setpriv", "--inh-caps=-sys_resource", "--bounding-set=-sys_resource"]


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("quota integration tests need root")
    if not os.path.exists(loopdev.LOOP_CONTROL):
        pytest.skip("no /dev/loop-control on this host")


def write_mib(path: Path, mib: int) -> subprocess.CompletedProcess[str]:
    """Write *mib* MiB of real zeros (not a sparse file), flushed to the filesystem."""
    return subprocess.run(
        [
            *NO_SYS_RESOURCE,
            "dd",
            "if=/dev/zero",
            f"of={path}",
            "bs=1M",
            f"count={mib}",
            "conv=fsync",
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def _mounted_image(tmp_path: Path, fstype: str, size: int) -> Iterator[Path]:
    """A fresh filesystem image mounted under *tmp_path*, always unmounted and detached."""
    _require_root()
    mkfs = f"mkfs.{fstype}"
    if shutil.which(mkfs) is None:
        pytest.skip(f"{mkfs} is not installed")
    image = tmp_path / f"{fstype}.img"
    with open(image, "wb") as f:
        f.truncate(size)
    subprocess.run([mkfs, "-q", str(image)], check=True, capture_output=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with loopdev.attached(image) as device:
        mount(device, mnt, fstype)
    try:
        yield mnt
    finally:
        if is_mount_point(mnt):
            umount(mnt, MNT_DETACH)
        for device in loopdev.devices_for(image):
            loopdev.detach(device)


@pytest.fixture
def btrfs_store(tmp_path: Path) -> Iterator[Path]:
    yield from _mounted_image(tmp_path, "btrfs", 512 * MiB)


@pytest.fixture
def xfs_store(tmp_path: Path) -> Iterator[Path]:
    yield from _mounted_image(tmp_path, "xfs", 320 * MiB)  # mkfs.xfs wants >= 300M


@pytest.fixture
def host_store(tmp_path: Path) -> Iterator[Path]:
    """A store directory on the host's own filesystem, for the loop backend."""
    _require_root()
    store = tmp_path / "store"
    store.mkdir()
    yield store
    for rootfs in store.glob("*/rootfs"):
        quota.make_backend("loop", store).remove(rootfs)


def _exercise(backend: quota.QuotaBackend, rootfs: Path) -> None:
    """The user's story: 64M holds no 100 MiB, usage shows, 128M does, remove is clean."""
    backend.prepare(rootfs, 64 * MiB)
    usage = backend.usage(rootfs)
    assert usage.limit_bytes == 64 * MiB
    assert usage.used_bytes < 1 * MiB

    result = write_mib(rootfs / "big", 100)
    assert result.returncode != 0
    assert ("Disk quota exceeded" in result.stderr) or ("No space left on device" in result.stderr)
    usage = backend.usage(rootfs)
    assert 40 * MiB < usage.used_bytes <= 64 * MiB

    (rootfs / "big").unlink()
    backend.resize(rootfs, 128 * MiB)
    assert backend.usage(rootfs).limit_bytes == 128 * MiB
    result = write_mib(rootfs / "big", 100)
    assert result.returncode == 0, result.stderr
    assert backend.usage(rootfs).used_bytes >= 100 * MiB

    with pytest.raises(quota.QuotaExceeded, match="already holds"):
        backend.resize(rootfs, 32 * MiB)
    backend.remove(rootfs)
    backend.remove(rootfs)  # safe to repeat


def test_btrfs_backend_limits_a_subvolume(btrfs_store: Path) -> None:
    backend = quota.select_backend(btrfs_store, "auto")
    assert backend.name == "btrfs"
    rootfs = btrfs_store / "c1" / "rootfs"
    rootfs.parent.mkdir()
    backend.prepare(rootfs, 64 * MiB)
    assert btrfsctl.is_subvolume(rootfs)
    subvol = btrfsctl.subvolume_id(rootfs)
    backend.remove(rootfs)

    _exercise(backend, rootfs)
    assert not rootfs.exists()
    # No subvolume and no (stale) qgroup is left behind.
    listing = subprocess.run(
        ["btrfs", "subvolume", "list", str(btrfs_store)], capture_output=True, text=True, check=True
    ).stdout
    assert "rootfs" not in listing
    with pytest.raises(OSError) as exc:
        btrfsctl.qgroup_info(btrfs_store, subvol)
    assert exc.value.errno == errno.ENOENT


def test_btrfs_refuses_a_plain_directory(btrfs_store: Path) -> None:
    plain = btrfs_store / "plain"
    plain.mkdir()
    with pytest.raises(quota.QuotaUnsupported, match="not a btrfs subvolume"):
        quota.make_backend("btrfs", btrfs_store).set_limit(plain, 64 * MiB)


def test_loop_backend_limits_an_image(host_store: Path) -> None:
    backend = quota.make_backend("loop", host_store)
    rootfs = host_store / "c1" / "rootfs"
    rootfs.parent.mkdir()
    backend.prepare(rootfs, 64 * MiB)
    assert find_mount(rootfs).source.startswith("/dev/loop")
    # df (statfs) sees about the limit: ext4 keeps a few MiB for its journal and tables.
    st = os.statvfs(rootfs)
    assert 50 * MiB < st.f_blocks * st.f_frsize <= 64 * MiB
    backend.remove(rootfs)

    _exercise(backend, rootfs)
    assert not image_path(rootfs).exists()
    assert not is_mount_point(rootfs)
    assert loopdev.devices_for(image_path(rootfs)) == []


def test_loop_backend_survives_a_reboot_by_activate(host_store: Path) -> None:
    backend = quota.make_backend("loop", host_store)
    rootfs = host_store / "c1" / "rootfs"
    rootfs.parent.mkdir()
    backend.prepare(rootfs, 32 * MiB)
    (rootfs / "marker").write_text("kept")
    umount(rootfs)  # what a reboot does to the mount (autoclear frees the loop device)
    assert loopdev.devices_for(image_path(rootfs)) == []
    backend.activate(rootfs)
    assert (rootfs / "marker").read_text() == "kept"
    backend.activate(rootfs)  # idempotent
    assert len(loopdev.devices_for(image_path(rootfs))) == 1


def test_loop_refuses_to_shrink_and_to_exceed_free_space(host_store: Path) -> None:
    backend = quota.make_backend("loop", host_store)
    rootfs = host_store / "c1" / "rootfs"
    rootfs.parent.mkdir()
    backend.prepare(rootfs, 64 * MiB)
    with pytest.raises(quota.ResizeUnsupported, match="cannot shrink"):
        backend.resize(rootfs, 32 * MiB)
    with pytest.raises(quota.InvalidLimit, match="free"):
        backend.resize(rootfs, 1 << 50)
    with pytest.raises(quota.InvalidLimit, match="free on"):
        backend.prepare(host_store / "c2" / "rootfs", 1 << 50)
    assert not (host_store / "c2" / "rootfs.img").exists()


def test_loop_grow_is_refused_while_another_namespace_holds_the_mount(
    host_store: Path,
) -> None:
    """A running container keeps the filesystem mounted in its own namespace. Without
    CAP_SYS_RESOURCE a live grow is impossible, and an offline one would corrupt it."""
    backend = quota.make_backend("loop", host_store)
    rootfs = host_store / "c1" / "rootfs"
    rootfs.parent.mkdir()
    backend.prepare(rootfs, 32 * MiB)
    holder = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"cd {rootfs} && echo ready && exec sleep 60",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        from quota.loop import _can_resize_online

        if _can_resize_online():
            backend.resize(rootfs, 64 * MiB)  # this host can grow live
            assert backend.usage(rootfs).limit_bytes == 64 * MiB
        else:
            with pytest.raises(quota.ResizeUnsupported, match="CAP_SYS_RESOURCE"):
                backend.resize(rootfs, 64 * MiB)
            assert backend.usage(rootfs).limit_bytes == 32 * MiB  # still mounted, unchanged
    finally:
        holder.kill()
        holder.wait()


def test_project_backend_names_mount_and_option_on_this_host(tmp_path: Path) -> None:
    _require_root()
    probe = quota.probe("project", tmp_path)
    if probe.ok:
        pytest.skip("this host has project quotas enabled")
    mount_point = find_mount(tmp_path).mount_point
    assert not probe.ok
    if probe.errno == errno.ESRCH:
        assert "not mounted with" in probe.reason and mount_point in probe.reason
        assert probe.hint and ("prjquota" in probe.hint or "pquota" in probe.hint)
    with pytest.raises(quota.QuotaError):
        quota.select_backend(tmp_path, "project")


def test_project_on_btrfs_and_btrfs_on_ext4_are_unsupported(
    btrfs_store: Path, host_store: Path
) -> None:
    with pytest.raises(quota.QuotaUnsupported, match="no project quotas") as exc:
        quota.select_backend(btrfs_store, "project")
    assert exc.value.errno == errno.EOPNOTSUPP
    if quota.probe("btrfs", host_store).ok:
        pytest.skip("the host store is on btrfs")
    with pytest.raises(quota.QuotaUnsupported, match="not btrfs"):
        quota.select_backend(host_store, "btrfs")


def test_xfs_without_kernel_quota_support_says_kernel(xfs_store: Path) -> None:
    """This host's kernel has no CONFIG_XFS_QUOTA: quotactl answers ENOSYS, which must read
    as a kernel limitation, not as a missing mount option."""
    probe = quota.probe("project", xfs_store)
    if probe.ok:
        pytest.skip("this kernel has xfs quota")
    if probe.errno == errno.ENOSYS:
        assert "kernel" in probe.reason
    else:
        assert probe.errno == errno.ESRCH and "pquota" in probe.reason


def test_xfs_relabel_sets_ids_and_inheritance_skipping_fifos(xfs_store: Path) -> None:
    """FS_IOC_FSSETXATTR works on xfs even without quota accounting: check the labels."""
    from quota import fsxattr

    tree = xfs_store / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    os.mkfifo(tree / "initctl")
    report = fsxattr.relabel_tree(tree, 123456)
    assert (report.labelled, report.skipped) == (3, 1)
    assert fsxattr.get_project(tree / "etc") == (123456, True)
    assert fsxattr.get_project(tree / "etc" / "hosts") == (123456, False)
    (tree / "etc" / "new").write_text("x")
    assert fsxattr.get_project(tree / "etc" / "new")[0] == 123456  # inherited


def test_loop_devices_without_loop_control(
    host_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kernels before 3.1 have no /dev/loop-control: a free /dev/loopN is found by asking
    each device for its status."""
    monkeypatch.setattr(loopdev, "LOOP_CONTROL", str(host_store / "no-loop-control"))
    image = host_store / "scan.img"
    with open(image, "wb") as f:
        f.truncate(16 * MiB)
    with loopdev.attached(image) as device:
        assert loopdev.devices_for(image) == [device]
    assert loopdev.devices_for(image) == []  # autoclear on the last close
