"""Serving a qemu image as a read-only block device with qemu-nbd, where the kernel has
the nbd driver: no conversion copy is needed then."""

from __future__ import annotations

import os
import time
from pathlib import Path

from vmimport.errors import ToolFailed
from vmimport.tools import find_tool, run

SYS_BLOCK = Path("/sys/block")


def available(sys_block: Path = SYS_BLOCK) -> bool:
    """Whether /dev/nbdN devices exist, loading the module once if they do not."""
    if find_tool("qemu-nbd") is None:
        return False
    if not (sys_block / "nbd0").exists():
        try:
            run(["modprobe", "nbd"])
        except ToolFailed:
            return False
    return (sys_block / "nbd0").exists() and os.path.exists("/dev/nbd0")


def free_device(sys_block: Path = SYS_BLOCK) -> str | None:
    """An nbd device nobody serves: no server pid and a size of zero."""
    for entry in sorted(sys_block.glob("nbd*"), key=lambda p: int(p.name[3:] or 0)):
        if (entry / "pid").exists():
            continue
        try:
            if int((entry / "size").read_text()) == 0:
                return f"/dev/{entry.name}"
        except (OSError, ValueError):
            continue
    return None


def connect(image: str, fmt: str, device: str, timeout: float = 10.0) -> None:
    """Serve *image* read-only on *device*; qemu-nbd forks into the background itself."""
    run(["qemu-nbd", "--read-only", f"--format={fmt}", f"--connect={device}", image])
    size = SYS_BLOCK / Path(device).name / "size"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(size.read_text() or 0) > 0:
            return
        time.sleep(0.05)
    raise ToolFailed(["qemu-nbd"], 1, f"{device} did not come up within {timeout} s")


def disconnect(device: str) -> None:
    run(["qemu-nbd", "--disconnect", device])
