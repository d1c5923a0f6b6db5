"""vmimport inside the VM: the kernel's own partitions (/dev/loopNpM), a root on LVM
activated read-only and released, and a qcow2 served by qemu-nbd. Prints one
``CHECK name: ok|FAIL detail`` line per check and VMIMPORT-VM-RESULT at the end."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, sys.argv[1])

import vmimport
from tests.integration.vmimages import (
    Part,
    build_disk,
    build_lvm_disk,
    busybox_root,
    convert,
    sh,
    sha256,
)
from vmimport import AttachMethod, lvm, mounts

WORK = Path("/tmp/vmimport-vm")
failures = 0


def check(name: str, body: Callable[[], str]) -> None:
    global failures
    try:
        detail = body()
        print(f"CHECK {name}: ok {detail}", flush=True)
    except Exception:
        failures += 1
        print(f"CHECK {name}: FAIL", flush=True)
        traceback.print_exc()


def released(scratch: Path, image: Path) -> None:
    assert mounts.mounts_under(scratch) == [], mounts.mounts_under(scratch)
    assert sh("losetup", "-j", image) == ""
    assert not (scratch / "leases.jsonl").exists()


def kernel_partitions() -> str:
    boot = Part(16, files={"vmlinuz-test": "kernel\n"})
    root = Part(40)
    root.files = busybox_root(
        f"UUID={root.uuid} / ext4 defaults 0 1\nUUID={boot.uuid} /boot ext4 defaults 0 2\n"
    )
    image = build_disk(WORK / "parts.raw", [boot, root], WORK)
    before = sha256(image)
    with vmimport.mounted_tree(image, WORK / "s1") as tree:
        devices = [v.device for v in tree.volumes]
        assert all("p" in Path(d).name for d in devices), devices  # loopNp1, loopNp2
        assert (Path(tree) / "boot/vmlinuz-test").read_text() == "kernel\n"
    released(WORK / "s1", image)
    assert sha256(image) == before
    return " ".join(devices)


def lvm_root() -> str:
    assert lvm.device_mapper_available()
    vg = "rt-vg" + os.urandom(3).hex()
    _, image = build_lvm_disk(WORK / "lvm.raw", vg, WORK)
    before = sha256(image)
    with vmimport.mounted_tree(image, WORK / "s2") as tree:
        root = Path(tree)
        assert tree.plan.root.volume.lv is not None
        assert (root / "etc/os-release").exists()
        assert (root / "var/lib/marker").read_text() == "lvm var\n"
        assert (root / "boot/vmlinuz-test").exists()
        targets = [m.target for m in tree.plan.mounts]
        # Without udev, LVM makes real nodes in /dev/mapper (not links to /dev/dm-N).
        ro = [
            Path(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}/ro").read_text().strip()
            for rdev in (os.stat(v.device).st_rdev for v in tree.volumes if v.lv is not None)
        ]
        assert ro == ["1", "1"], ro  # activated read-only
        active = sh("dmsetup", "ls")
    released(WORK / "s2", image)
    after = sh("dmsetup", "ls")
    assert vg.replace("-", "--") in active and vg.replace("-", "--") not in after, (active, after)
    assert sha256(image) == before
    return f"mounts {targets}"


def nbd_served() -> str:
    boot = Part(16, files={"vmlinuz-test": "kernel\n"})
    root = Part(40)
    root.files = busybox_root(
        f"UUID={root.uuid} / ext4 defaults 0 1\nUUID={boot.uuid} /boot ext4 defaults 0 2\n"
    )
    image = convert(build_disk(WORK / "nbd.raw", [boot, root], WORK), "qcow2")
    before = sha256(image)
    with vmimport.mounted_tree(image, WORK / "s3", attach_method=AttachMethod.NBD) as tree:
        assert (Path(tree) / "boot/vmlinuz-test").exists()
        assert not (WORK / "s3/disk.raw").exists()  # served, not converted
        served = [d.name for d in Path("/sys/block").glob("nbd*") if (d / "pid").exists()]
        assert served, "no nbd device is being served"
    assert not [d for d in Path("/sys/block").glob("nbd*") if (d / "pid").exists()]
    assert mounts.mounts_under(WORK / "s3") == []
    assert sha256(image) == before
    return f"served on {served}"


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    check("kernel-partitions", kernel_partitions)
    check("lvm-root-read-only", lvm_root)
    check("nbd", nbd_served)
    print("VMIMPORT-VM-RESULT:", "PASS" if failures == 0 else "FAIL", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
