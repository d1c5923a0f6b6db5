"""The package's only child processes: making an ext4 filesystem has no kernel API."""

from __future__ import annotations

import os
import shutil
import subprocess

from quota.errors import ToolFailed

_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run_tool(argv: list[str], ok: tuple[int, ...] = (0,)) -> str:
    """Run a system tool with a clean environment; return stdout or raise ToolFailed.
    *ok* lists the exit statuses that mean success."""
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={"PATH": _PATH, "LC_ALL": "C"},
            check=False,
        )
    except FileNotFoundError:
        raise ToolFailed(argv, 127, f"{argv[0]} is not installed") from None
    if proc.returncode not in ok:
        raise ToolFailed(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def find_tool(name: str) -> str | None:
    return shutil.which(name, path=_PATH)


def make_ext4(image: str | os.PathLike[str], label: str = "", inodes: int | None = None) -> None:
    """mkfs.ext4 tuned for a container root: no blocks reserved for root (the container's
    root may not use them anyway), the standard inode ratio even for small images, and
    lazy table init so creating a large image is quick. *inodes* fixes the inode count
    instead of the ratio (mkfs rounds it up to fill its inode table blocks)."""
    argv = [
        "mkfs.ext4",
        "-q",
        "-F",
        "-m",
        "0",
        "-T",
        "default",
        "-E",
        "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
    ]
    if label:
        argv += ["-L", label[:16]]
    if inodes is not None:
        argv += ["-N", str(inodes)]
    run_tool([*argv, os.fspath(image)])


def grow_ext4_offline(image: str | os.PathLike[str]) -> None:
    """Grow an unmounted ext4 image to its file's size. resize2fs insists on a fresh
    e2fsck first; e2fsck exits 1 when it fixed something, which is fine here."""
    run_tool(["e2fsck", "-f", "-y", os.fspath(image)], ok=(0, 1))
    run_tool(["resize2fs", os.fspath(image)])
