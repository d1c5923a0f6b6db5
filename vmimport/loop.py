"""Read-only loop devices through losetup, and finding them again by backing file."""

from __future__ import annotations

import os
from pathlib import Path

from vmimport.tools import run


def attach_ro(
    backing: str, *, offset: int = 0, size: int | None = None, partscan: bool = False
) -> str:
    """Bind a free loop device to *backing* (a file or a block device) read-only; return
    /dev/loopN. With *offset* and *size*, the device shows only that byte range (one
    partition). --read-only makes the kernel refuse every write, whatever later mounts
    or tools try."""
    argv = ["losetup", "--read-only", "--show", "--find"]
    if partscan:
        argv.append("--partscan")
    if offset:
        argv += ["--offset", str(offset)]
    if size is not None:
        argv += ["--sizelimit", str(size)]
    return run([*argv, backing]).strip()


def detach(device: str) -> None:
    """Unbind *device*. A device still in use (a lazily detached mount) is unbound by the
    kernel when its last user lets go."""
    run(["losetup", "--detach", device])


def binding(device: str, sys_block: str = "/sys/block") -> tuple[str, int] | None:
    """(backing file, offset) of a bound loop device, or None when it is free."""
    loop = Path(sys_block, Path(device).name, "loop")
    try:
        backing = (loop / "backing_file").read_text().rstrip("\n")
        offset = int((loop / "offset").read_text())
    except (OSError, ValueError):
        return None
    return backing.removesuffix(" (deleted)"), offset


def find(backing: str, offset: int | None = None, sys_block: str = "/sys/block") -> list[str]:
    """Loop devices bound to *backing* (at *offset*, if given)."""
    target = os.path.realpath(backing)
    found = []
    for entry in sorted(Path(sys_block).glob("loop*")):
        bound = binding(entry.name, sys_block)
        if bound and bound[0] == target and (offset is None or bound[1] == offset):
            found.append(f"/dev/{entry.name}")
    return found
