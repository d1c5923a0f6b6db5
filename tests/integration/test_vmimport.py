"""vmimport on real disk images the test builds: raw, qcow2, vmdk, vdi, vhdx and vhd
attached read-only, the guest's tree assembled from its partitions by its fstab (ext4 with
a crashed journal, btrfs subvolumes, xfs), the image unchanged and everything released
after, even after a SIGKILL; damaged, unknown, encrypted, in-use and LVM images and a full
scratch directory refused clearly. The LVM, kernel-partition and nbd paths this kernel
cannot take are in test_vmimport_vm.py."""

from __future__ import annotations

import gzip
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import vmimport
from tests.integration.vmimages import (
    MIB,
    Part,
    build_btrfs_xfs_disk,
    build_disk,
    busybox_root,
    convert,
    lvm_partition,
    needs_recovery,
    sh,
    sha256,
)
from vmimport import loop, mounts

pytestmark = pytest.mark.integration

TOOLS = ("qemu-img", "qemu-nbd", "sfdisk", "mkfs.ext4", "debugfs", "losetup", "blkid")
CONVERTED = ("qcow2", "vmdk", "vdi", "vhdx", "vpc")
VMDK_KINDS = ("streamOptimized", "monolithicFlat")


@pytest.fixture(scope="session", autouse=True)
def _host() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (loop devices and mounts)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (apt-get install qemu-utils fdisk e2fsprogs)")


@dataclass(frozen=True)
class Images:
    boot: dict[str, Path]  # format -> image: GPT, /boot + root
    var: dict[str, Path]  # format -> image: GPT, root + a separate /var
    sums: dict[Path, str]


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    work = tmp_path_factory.mktemp("vmimport-images")
    boot = Part(16, files={"vmlinuz-test": "kernel\n", "grub/grub.cfg": "set default=0\n"})
    root = Part(40)
    root.files = busybox_root(
        textwrap.dedent(
            f"""\
            # /etc/fstab: static file system information.
            UUID={root.uuid}  /  ext4  errors=remount-ro  0 1
            UUID={boot.uuid}  /boot  ext4  defaults  0 2
            /dev/sda3  none  swap  sw  0 0
            nas:/export  /srv/nfs  nfs  defaults,_netdev  0 0
            tmpfs  /tmp  tmpfs  defaults  0 0
            UUID=0e2f7e7e-0000-4000-8000-000000000000  /data  ext4  defaults  0 2
            """
        )
    )
    boot_raw = build_disk(work / "boot.raw", [boot, root], work)

    # Both marked as crashed: their journals must not be replayed (the image is read-only).
    vroot = Part(40, dirty=True)
    var = Part(16, files={"lib/marker": "on the var partition\n"}, dirty=True)
    vroot.files = busybox_root(
        f"UUID={vroot.uuid} / ext4 defaults 0 1\nPARTUUID={var.partuuid} /var ext4 defaults 0 2\n",
        {"var/lib/marker": "under the var mount point, hidden\n"},
    )
    var_raw = build_disk(work / "var.raw", [vroot, var], work)

    sets = (
        {"raw": boot_raw}
        | {fmt: convert(boot_raw, fmt) for fmt in CONVERTED}
        | {f"vmdk-{kind}": convert(boot_raw, "vmdk", kind) for kind in VMDK_KINDS},
        {"raw": var_raw, "vmdk": convert(var_raw, "vmdk")},
    )
    sums = {path: sha256(path) for s in sets for path in s.values()}
    return Images(sets[0], sets[1], sums)


def loops_on(backings: set[str]) -> dict[str, str]:
    """Loop devices bound to any of *backings*, and loops stacked on those: device -> backing."""
    found: dict[str, str] = {}
    for _ in range(2):
        for entry in Path("/sys/block").glob("loop*"):
            bound = loop.binding(entry.name)
            if bound and (bound[0] in backings or bound[0] in found):
                found[f"/dev/{entry.name}"] = bound[0]
    return found


def assemble(image: Path, scratch: Path, **kwargs: Any) -> None:
    """Assemble the tree and let it go again: for the refusals."""
    with vmimport.mounted_tree(image, scratch, **kwargs):
        pass


def assert_released(scratch: Path, backings: set[str]) -> None:
    assert mounts.mounts_under(scratch) == []
    assert loops_on(backings) == {}
    assert not (scratch / "disk.raw").exists()
    assert not (scratch / "leases.jsonl").exists()
    for backing in backings:
        if Path(backing).exists():
            assert sh("losetup", "-j", backing) == ""


@pytest.mark.parametrize("fmt", ["raw", *CONVERTED, *(f"vmdk-{kind}" for kind in VMDK_KINDS)])
def test_boot_and_root_assembled_read_only(images: Images, tmp_path: Path, fmt: str) -> None:
    image = images.boot[fmt]
    scratch = tmp_path / "scratch"
    seen: list[tuple[int, int | None, str]] = []
    backings = {str(image), str(scratch / "disk.raw")}
    with vmimport.mounted_tree(image, scratch, progress=lambda *a: seen.append(a)) as tree:
        root = Path(tree)
        assert (root / "etc/os-release").read_text().startswith('PRETTY_NAME="vmimport test')
        assert (root / "bin/busybox").stat().st_size == Path("/bin/busybox").stat().st_size
        assert os.readlink(root / "sbin/init") == "/bin/busybox"
        assert (root / "boot/vmlinuz-test").read_text() == "kernel\n"
        assert (root / "boot/grub/grub.cfg").exists()
        assert tree.image.format == fmt.split("-")[0]
        assert [m.target for m in tree.plan.mounts] == ["/boot"]
        dropped = {d.target: d.reason for d in tree.plan.dropped}
        assert dropped.keys() == {"none", "/srv/nfs", "/tmp", "/data"}
        assert dropped["/data"].startswith("not on the image")
        report = json.loads(json.dumps(tree.report()))
        assert report["image"]["format"] == tree.image.format
        assert [(m["target"], m["partition"], m["fstype"]) for m in report["mounts"]] == [
            ("/", 2, "ext4"),
            ("/boot", 1, "ext4"),
        ]
        assert {d["target"] for d in report["dropped"]} == dropped.keys()
        # Read-only from the user's side: writes fail, on the root and on /boot.
        for where in (root, root / "boot"):
            with pytest.raises(OSError, match="Read-only"):
                (where / "new").write_text("x")
        assert loops_on(backings), "the test must see the loop devices it expects to go"
        for device in loops_on(backings):
            assert Path(f"/sys/block/{Path(device).name}/ro").read_text().strip() == "1"
    assert_released(scratch, backings)
    assert sha256(image) == images.sums[image]
    if fmt != "raw":
        assert seen and seen[-1][0] == seen[-1][1] == tree.image.size
        assert all(what == f"converting {image.name}" for _, _, what in seen)


@pytest.mark.parametrize("fmt", ["raw", "vmdk"])
def test_separate_var_partition_mounted_over_the_roots_var(
    images: Images, tmp_path: Path, fmt: str
) -> None:
    image = images.var[fmt]
    if fmt == "raw":
        assert needs_recovery(image, MIB)  # mounts only with noload on a read-only device
    with vmimport.mounted_tree(image, tmp_path / "s") as tree:
        assert (Path(tree) / "var/lib/marker").read_text() == "on the var partition\n"
        assert [(m.target, m.volume.number) for m in tree.plan.mounts] == [("/var", 2)]
    assert_released(tmp_path / "s", {str(image), str(tmp_path / "s/disk.raw")})
    assert sha256(image) == images.sums[image]


def test_btrfs_subvolumes_and_xfs(tmp_path: Path) -> None:
    for tool in ("mkfs.btrfs", "btrfs", "mkfs.xfs"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing (apt-get install btrfs-progs xfsprogs)")
    image = tmp_path / "bx.raw"
    ids = build_btrfs_xfs_disk(image, tmp_path)
    before = sha256(image)
    with vmimport.mounted_tree(image, tmp_path / "s") as tree:
        root = Path(tree)
        assert tree.plan.root.options == ("subvol=/@",)  # found one level down
        assert (root / "etc/os-release").exists()
        assert (root / "home/alice/notes").read_text() == "in the @home subvolume\n"
        assert (root / "srv/data/marker").read_text() == "on xfs\n"
        assert [(m.target, m.fstype, m.options) for m in tree.plan.mounts] == [
            ("/home", "btrfs", ("subvol=@home",)),
            ("/srv/data", "xfs", ()),
        ]
        assert {v.uuid for v in tree.volumes} == set(ids.values())
    assert_released(tmp_path / "s", {str(image)})
    assert sha256(image) == before


def test_an_efi_partition_this_kernel_cannot_mount_is_dropped_not_fatal(tmp_path: Path) -> None:
    if "minix" in Path("/proc/filesystems").read_text() or shutil.which("mkfs.minix") is None:
        pytest.skip("needs a filesystem this kernel lacks and a tool to make it (minix)")
    boot = Part(16, files={"vmlinuz-test": "kernel\n", "efi/.keep": ""})
    root, efi = Part(40), Part(8, kind="minix")
    root.files = busybox_root(
        f"UUID={root.uuid} / ext4 defaults 0 1\n"
        f"PARTUUID={efi.partuuid} /boot/efi vfat umask=0077 0 1\n"  # after its parent
        f"UUID={boot.uuid} /boot ext4 defaults 0 2\n"
    )
    image = build_disk(tmp_path / "efi.raw", [boot, root, efi], tmp_path)
    with vmimport.mounted_tree(image, tmp_path / "s") as tree:
        assert (Path(tree) / "boot/vmlinuz-test").exists()  # /boot went first all the same
        assert [m.target for m in tree.plan.mounts] == ["/boot"]
        (dropped,) = tree.plan.dropped
        assert (dropped.target, dropped.spec, dropped.fstype) == (
            "/boot/efi",
            f"PARTUUID={efi.partuuid}",
            "minix",
        )
        assert dropped.reason.startswith("not mountable here (No such device)")
    assert_released(tmp_path / "s", {str(image)})


def test_a_filesystem_this_kernel_cannot_mount_is_named(tmp_path: Path) -> None:
    if zcat_config("CONFIG_XFS_SUPPORT_V4=y"):
        pytest.skip("this kernel mounts xfs v4")
    image = tmp_path / "centos6.img"  # a partitionless xfs v4, as old guests have
    sh("truncate", "-s", "300M", image)
    sh("mkfs.xfs", "-q", "-f", "-m", "crc=0", image)
    with pytest.raises(
        vmimport.RootNotFound,
        match=r"could not be mounted: the whole disk \(xfs\): Invalid argument",
    ) as err:
        assemble(image, tmp_path / "s")
    assert "CONFIG_XFS_SUPPORT_V4" in (err.value.hint or "")
    assert_released(tmp_path / "s", {str(image)})


def zcat_config(line: str) -> bool:
    config = Path("/proc/config.gz")
    return config.exists() and line in gzip.decompress(config.read_bytes()).decode()


def test_a_partitionless_filesystem_image(tmp_path: Path) -> None:
    tree = tmp_path / "rootfs"
    tree.mkdir()
    (tree / "etc").mkdir()
    (tree / "etc/fstab").write_text("LABEL=guestroot / ext4 defaults 0 1\n")
    (tree / "etc/os-release").write_text("ID=alpine\n")
    image = tmp_path / "rootfs.img"  # what virt-make-fs and many appliances ship
    sh("mkfs.ext4", "-q", "-F", "-L", "guestroot", "-d", tree, image, "16M")
    for root_partition in (None, 0):
        with vmimport.mounted_tree(image, tmp_path / "s", root_partition=root_partition) as t:
            assert (Path(t) / "etc/os-release").read_text() == "ID=alpine\n"
            assert t.plan.root.volume.number is None
            assert t.plan.root.volume.describe() == "the whole disk"
        assert_released(tmp_path / "s", {str(image)})


def test_root_partition_override(images: Images, tmp_path: Path) -> None:
    with vmimport.mounted_tree(images.var["raw"], tmp_path / "s", root_partition=1) as tree:
        assert tree.plan.root.volume.number == 1
    with pytest.raises(vmimport.RootNotFound, match="no partition 7"):
        assemble(images.var["raw"], tmp_path / "s", root_partition=7)
    assert_released(tmp_path / "s", {str(images.var["raw"])})


def test_unknown_missing_and_compressed_images_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.img"
    text.write_text("just some text\n" * 200)
    with pytest.raises(vmimport.UnknownFormat, match="not a disk image") as err:
        assemble(text, tmp_path / "s")
    assert "qemu-img convert" in (err.value.hint or "")
    gz = tmp_path / "disk.raw.gz"
    sh("sh", "-c", f"head -c 100000 /dev/zero | gzip > {gz}")
    with pytest.raises(vmimport.UnknownFormat, match="gzip") as err:
        vmimport.inspect(gz)
    assert err.value.hint == "gunzip it first"
    with pytest.raises(vmimport.ImageNotFound):
        vmimport.inspect(tmp_path / "nope.qcow2")


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_an_image_a_running_vm_holds_is_refused(images: Images, tmp_path: Path, fmt: str) -> None:
    # qemu-nbd serving the image read-write takes the same locks a running VM's qemu does.
    image = tmp_path / f"running.{fmt}"
    sh("cp", "--sparse=always", images.boot[fmt], image)
    server = subprocess.Popen(
        ["qemu-nbd", "--persistent", f"--socket={tmp_path / 'nbd.sock'}", "-f", fmt, image],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "nbd.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(vmimport.ImageInUse, match="in use by a running VM"):
            assemble(image, tmp_path / "s")
    finally:
        server.terminate()
        server.wait()
    assert_released(tmp_path / "s", {str(image)})


def test_truncated_qcow2_refused_as_corrupt(images: Images, tmp_path: Path) -> None:
    cut = tmp_path / "cut.qcow2"
    data = images.boot["qcow2"].read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(vmimport.CorruptImage, match="damaged"):
        assemble(cut, tmp_path / "s")
    assert_released(tmp_path / "s", {str(cut)})


def test_truncated_raw_image_refused_as_corrupt(images: Images, tmp_path: Path) -> None:
    cut = tmp_path / "cut.raw"
    sh("cp", "--sparse=always", images.boot["raw"], cut)
    os.truncate(cut, 40 * MIB)  # the root partition ran to 57 MiB
    with pytest.raises(vmimport.CorruptImage, match=r"partition 2 ends .* truncated"):
        assemble(cut, tmp_path / "s")
    assert_released(tmp_path / "s", {str(cut)})


def test_luks_root_refused_with_a_hint(tmp_path: Path) -> None:
    if shutil.which("cryptsetup") is None:
        pytest.skip("cryptsetup is not installed (apt-get install cryptsetup-bin)")
    image = build_disk(tmp_path / "luks.raw", [Part(16), Part(20, kind="luks")], tmp_path)
    before = sha256(image)
    with pytest.raises(vmimport.EncryptedRoot, match="partition 2 is LUKS") as err:
        assemble(image, tmp_path / "s")
    assert "cryptsetup open" in (err.value.hint or "")
    assert_released(tmp_path / "s", {str(image)})
    assert sha256(image) == before


def test_lvm_root_without_device_mapper_is_a_clear_error(tmp_path: Path) -> None:
    if vmimport.lvm.device_mapper_available():
        pytest.skip("this host has device-mapper; the LVM error path cannot be shown here")
    if shutil.which("vgcfgrestore") is None:
        pytest.skip("lvm2 is not installed")
    vg = f"rtvg{secrets.token_hex(3)}"
    image = build_disk(tmp_path / "lvm.raw", [Part(16), Part(24, kind="raw")], tmp_path)
    lvm_partition(image, 17 * MIB, 24, vg, tmp_path)
    with pytest.raises(vmimport.HostUnsupported, match="no device-mapper") as err:
        assemble(image, tmp_path / "s")
    assert "modprobe dm_mod" in (err.value.hint or "")
    assert_released(tmp_path / "s", {str(image)})


def test_volume_groups_are_listed_without_device_mapper(tmp_path: Path) -> None:
    if shutil.which("vgcfgrestore") is None:
        pytest.skip("lvm2 is not installed")
    vg = f"rtvg{secrets.token_hex(3)}"
    image = build_disk(tmp_path / "lvm.raw", [Part(24, kind="raw")], tmp_path)
    lvm_partition(image, MIB, 24, vg, tmp_path)
    device = sh("losetup", "--read-only", "--show", "-f", "--offset", str(MIB), image).strip()
    try:
        assert vmimport.lvm.volume_groups([device]) == [vg]
        (lv,) = vmimport.lvm.logical_volumes([device])
        assert (lv.vg, lv.lv, lv.dm_path) == (vg, "root", f"/dev/mapper/{vg}-root")
    finally:
        sh("losetup", "-d", device)


def test_scratch_too_small_leaves_nothing(images: Images, tmp_path: Path) -> None:
    # A compressed qcow2 takes far less room than its raw conversion: the early check
    # passes and the conversion itself runs out of space.
    packed = tmp_path / "packed.qcow2"
    sh("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", images.boot["raw"], packed)
    scratch = tmp_path / "small"
    scratch.mkdir()
    size = packed.stat().st_size + MIB // 4  # the raw copy needs twice as much
    sh("mount", "-t", "tmpfs", "-o", f"size={size}", "rt-scratch", scratch)
    try:
        with pytest.raises(vmimport.ScratchFull), vmimport.mounted_tree(packed, scratch):
            pass
        assert sorted(p.name for p in scratch.iterdir()) == ["lock"]
    finally:
        sh("umount", scratch)


CHILD = """
import sys, time, vmimport
with vmimport.mounted_tree(sys.argv[1], sys.argv[2]) as tree:
    print(tree.path, flush=True)
    time.sleep(600)
"""


@pytest.fixture
def killed_run(images: Images, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A child that assembled the qcow2 image's tree and was SIGKILLed holding it."""
    image, scratch = images.boot["qcow2"], tmp_path / "scratch"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(image), str(scratch)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        tree = Path(child.stdout.readline().strip())
        assert (tree / "boot/vmlinuz-test").exists()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        yield image, scratch
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        vmimport.cleanup(scratch)  # whatever the test did, leave nothing behind


def test_cleanup_after_sigkill_releases_everything(
    images: Images, killed_run: tuple[Path, Path]
) -> None:
    image, scratch = killed_run
    backings = {str(image), str(scratch / "disk.raw")}
    assert mounts.mounts_under(scratch), "the killed run must have left its mounts"
    assert loops_on(backings)
    vmimport.cleanup(scratch)
    assert_released(scratch, backings)
    assert sha256(image) == images.sums[image]


KILLED_CONVERTING = """
import os, signal, sys, vmimport

def progress(done, total, what):
    if 0 < done < total:  # qemu-img is running and half-way
        print("converting", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

with vmimport.mounted_tree(sys.argv[1], sys.argv[2], progress=progress):
    pass
"""


def test_killed_while_converting_leaves_nothing_after_cleanup(
    images: Images, tmp_path: Path
) -> None:
    # A bigger guest, so the conversion is still running when the progress callback fires.
    image = tmp_path / "big.qcow2"
    raw = tmp_path / "big.raw"
    sh("cp", "--sparse=always", images.boot["raw"], raw)
    sh("dd", "if=/dev/urandom", f"of={raw}", "bs=1M", "count=48", "seek=8", "conv=notrunc",
       "status=none")  # fmt: skip
    sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, image)
    scratch = tmp_path / "scratch"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.run(
        [sys.executable, "-c", KILLED_CONVERTING, str(image), str(scratch)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL and child.stdout == "converting\n"
    assert (scratch / "leases.jsonl").exists()
    vmimport.cleanup(scratch)
    assert_released(scratch, {str(image), str(scratch / "disk.raw")})
    # qemu-img died with its parent (PR_SET_PDEATHSIG) instead of writing on.
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert str(scratch).encode() not in cmdline.read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue


def test_a_new_run_in_the_same_scratch_cleans_up_first(
    images: Images, killed_run: tuple[Path, Path]
) -> None:
    image, scratch = killed_run
    with vmimport.mounted_tree(image, scratch) as tree:
        assert len([m for m in mounts.mounts_under(scratch)]) == 2  # the new root and /boot
        assert (Path(tree) / "boot/vmlinuz-test").exists()
    assert_released(scratch, {str(image), str(scratch / "disk.raw")})
