"""Migration from what ops hold, end to end with richc: VM disk images the test builds
itself (a Debian tree on a GPT disk with /boot, as qcow2 and vmdk; a guest whose fstab
mounts /var from its own partition) and a live host (sshd in a network namespace serving
a Debian tree), booted, re-synced, cut over and reported on."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RichcRunner
from tests.integration.sshhost import Remote, ssh_server
from tests.integration.test_rootfs import check_systemd_boots_and_stops, wait_running
from tests.integration.vmimages import MIB, Part, build_disk, busybox_root, sh, sha256

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def debian_tree(tmp_path_factory: pytest.TempPathFactory, image_cache: Path) -> Iterator[Path]:
    """A copy of the session's Debian bookworm image (debootstrapped once per session),
    to build guest disks and a live host from."""
    if shutil.which("debootstrap") is None or shutil.which("qemu-img") is None:
        pytest.skip("needs debootstrap and qemu-utils")
    work = tmp_path_factory.mktemp("migrate")
    root = work / "root"
    (root / "var/lib/richc").mkdir(parents=True)
    (root / "var/lib/richc/images").symlink_to(image_cache)
    env = {"RICHC_ROOT": str(root), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    richc = str(Path(__import__("sys").executable).with_name("richc"))
    subprocess.run([richc, "create", "seed", "--from", "debian:bookworm", "--net", "none"],
                   env=env, check=True, capture_output=True, timeout=900)  # fmt: skip
    subprocess.run([richc, "rm", "seed"], env=env, check=True, capture_output=True)
    image = image_cache / "debian-bookworm-systemd/rootfs"
    tree = work / "guest"
    sh("cp", "-a", f"{image}/.", tree)
    (tree / "etc/hostname").write_text("legacy-vm\n")
    yield tree
    shutil.rmtree(work, ignore_errors=True)


def _tree_size_mib(tree: Path) -> int:
    used = sh("du", "-sm", "--apparent-size", tree).split()[0]
    return int(used)


def _debian_disk(tree: Path, path: Path, work: Path) -> Path:
    """GPT: 1 = /boot (ext4, with a marker), 2 = / (ext4, the Debian tree), fstab by UUID."""
    boot, root = Part(32, files={"marker-from-boot": "boot partition\n"}), Part(0)
    root.size_mib = _tree_size_mib(tree) + 160
    (tree / "etc/fstab").write_text(
        f"UUID={root.uuid} / ext4 errors=remount-ro 0 1\nUUID={boot.uuid} /boot ext4 defaults 0 2\n"
    )
    total = 1 + boot.size_mib + root.size_mib + 1
    path.unlink(missing_ok=True)
    sh("truncate", "-s", f"{total}M", path)
    script = "label: gpt\n" + "".join(
        f"size={p.size_mib}MiB, type=linux, uuid={p.partuuid}\n" for p in (boot, root)
    )
    subprocess.run(["sfdisk", "-q", str(path)], input=script, text=True, check=True)
    bootdir = work / "bootfs"
    bootdir.mkdir(exist_ok=True)
    (bootdir / "marker-from-boot").write_text("boot partition\n")
    start = MIB
    for part, content in ((boot, bootdir), (root, tree)):
        sh("mkfs.ext4", "-q", "-F", "-U", part.uuid, "-E", f"offset={start}", "-d", content,
           path, f"{part.size_mib}M")  # fmt: skip
        start += part.size_mib * MIB
    return path


@pytest.mark.parametrize("fmt", ["qcow2", "vmdk"])
def test_a_debian_disk_image_boots_with_its_boot_partition_merged(
    richc: RichcRunner, name: str, debian_tree: Path, tmp_path: Path, fmt: str
) -> None:
    raw = _debian_disk(debian_tree, tmp_path / "guest.raw", tmp_path)
    image = tmp_path / f"guest.{fmt}"
    sh("qemu-img", "convert", "-f", "raw", "-O", fmt, raw, image)
    raw.unlink()
    before = sha256(image)
    plan = json.loads(
        richc("create", name, "--from", f"disk:{image}", "--dry-run", "-f", "json").stdout
    )
    merged = {(c["action"], c["path"]) for c in plan["changes"]}
    assert ("merge", "/boot") in merged and plan["init"] == "systemd"
    created = richc("create", name, "--from", f"disk:{image}", timeout=600)
    assert f"richc migrate report {name}" in created.stderr
    assert sha256(image) == before  # the image is never written
    assert sh("losetup", "-j", image).strip() == ""  # every loop device released
    check_systemd_boots_and_stops(richc, name)
    richc("start", name)
    wait_running(richc, name)
    assert "boot partition" in richc("exec", name, "--", "cat", "/boot/marker-from-boot").stdout
    report = json.loads(richc("migrate", "report", name, "-f", "json").stdout)
    assert report["system_state"] == "running" and report["failed_units"] == []
    assert any(d["path"] == "/etc/fstab" for d in report["dropped"])  # its UUID= lines


def test_a_guest_with_a_separate_var_partition_keeps_its_var(
    richc: RichcRunner, name: str, tmp_path: Path
) -> None:
    var = Part(16, files={"lib/app/data": "on the var partition\n"})
    root = Part(24)
    root.files = busybox_root(
        f"UUID={root.uuid} / ext4 defaults 0 1\nUUID={var.uuid} /var ext4 defaults 0 2\n"
    )
    disk = build_disk(tmp_path / "two.raw", [root, var], tmp_path)
    richc("create", name, "--from", f"disk:{disk}", "--init", "busybox", "--start")
    data = richc("exec", name, "--", "/bin/busybox", "cat", "/var/lib/app/data").stdout
    assert data == "on the var partition\n"
    assert sh("losetup", "-j", disk).strip() == ""


def test_missing_corrupt_and_unknown_images_are_refused_and_leave_nothing(
    richc: RichcRunner, name: str, tmp_path: Path, richc_root: Path
) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(uuid.uuid4().bytes * 4096)
    qcow = tmp_path / "cut.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", qcow, "64M")
    with open(qcow, "r+b") as f:
        f.truncate(100)  # a header cut short
    for image, words in (
        (tmp_path / "nope.qcow2", "does not exist"),
        (junk, "not a disk image"),
        (qcow, "qcow2"),
    ):
        proc = richc("create", name, "--from", f"disk:{image}", check=False)
        assert proc.returncode in (1, 2), proc.stderr
        assert words in proc.stderr.lower() and "Traceback" not in proc.stderr, proc.stderr
        assert not (richc_root / "var/lib/richc/containers" / name).exists()
        if image.exists():
            assert sh("losetup", "-j", image).strip() == ""


@pytest.fixture
def live_host(debian_tree: Path, tmp_path: Path) -> Iterator[Remote]:
    work = tmp_path / "sshd"
    work.mkdir()
    (debian_tree / "etc/motd").write_text("version 1\n")
    with ssh_server(debian_tree, work) as remote:
        yield remote


def test_a_live_host_is_copied_synced_and_cut_over(
    richc: RichcRunner, name: str, live_host: Remote
) -> None:
    key, known = live_host.options.identity_file, live_host.options.known_hosts
    assert key is not None and known is not None
    richc("create", name, "--from", live_host.url, "--ssh-key", str(key),
          "--known-hosts", str(known), timeout=600)  # fmt: skip
    richc("start", name)
    assert wait_running(richc, name) == "running"
    assert richc("exec", name, "--", "cat", "/etc/motd").stdout == "version 1\n"
    richc("stop", name)
    # The host moves on; the container follows with an incremental sync while stopped...
    (live_host.tree / "etc/motd").write_text("version 2\n")
    synced: dict[str, Any] = json.loads(richc("migrate", "sync", name, "-f", "json").stdout)
    assert synced["source"] == live_host.url
    # ...the fix-ups are applied again over the host's own files...
    assert any(c["action"] == "mask" for c in synced["changes"]) or synced["changes"]
    (live_host.tree / "etc/motd").write_text("version 3\n")
    richc("migrate", "cutover", name)  # ...and a last sync, then the start
    assert richc("exec", name, "--", "cat", "/etc/motd").stdout == "version 3\n"
    assert wait_running(richc, name) == "running"
    report = json.loads(richc("migrate", "report", name, "-f", "json").stdout)
    assert report["failed_units"] == [] and report["running"]
    text = richc("migrate", "report", name).stdout
    assert "failed units: 0" in text and "network:" in text
    refused = richc("migrate", "sync", name, check=False)  # running: refused, says why
    assert refused.returncode == 1 and "running" in refused.stderr
