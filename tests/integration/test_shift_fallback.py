"""Unprivileged containers where the store's filesystem takes no idmapped mount (an
overlayfs, as a VM's or a container's own root is): the busybox image cannot be shared
through an idmapped view, so the container gets a copy, shifted once to its id range."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import RichcRunner

pytestmark = pytest.mark.integration


@pytest.fixture
def richc_root(tmp_path: Path) -> Iterator[Path]:
    """A private root on an overlayfs made by the test (its own busybox image too)."""
    base = Path(subprocess.run(["mktemp", "-d", "/tmp/richc-test-ovl.XXXX"], capture_output=True,
                               text=True, check=True).stdout.strip())  # fmt: skip
    base.chmod(0o711)  # the container's root walks down to its rootfs
    for name in ("lower", "upper", "work", "merged"):
        (base / name).mkdir()
    options = f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work"
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, base / "merged"], check=True
    )
    root = base / "merged/root"
    (root / "var/lib/richc").mkdir(parents=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", base / "merged"], check=False)
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_a_store_without_idmapped_mounts_gets_a_shifted_copy(
    richc: RichcRunner, name: str, richc_root: Path
) -> None:
    created = richc("create", name, "--net", "none")
    assert "shifting the ownership" in created.stderr
    info = json.loads(richc("inspect", name).stdout)
    security = info["security"]
    assert security["ownership"] == "shift" and not security["privileged"]
    first = int(security["host_ids"].split("-")[0])
    richc("start", name)
    # Inside, root is root and owns its files; from the host, they belong to the range.
    inside = richc("exec", name, "--", "sh", "-c", "touch /made-inside && ls -ln /made-inside")
    assert " 0        0 " in inside.stdout or inside.stdout.split()[2:4] == ["0", "0"]
    made = Path(info["rootfs"]) / "made-inside"
    assert made.stat().st_uid == first and made.stat().st_gid == first
    assert (Path(info["rootfs"]) / "bin/busybox").stat().st_uid == first
    uid_map = richc("exec", name, "--", "cat", "/proc/self/uid_map").stdout.split()
    assert uid_map == ["0", str(first), "65536"]
