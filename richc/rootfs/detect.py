"""Which init a root filesystem boots: where ``/sbin/init`` leads and what it is.

Paths are resolved as the guest sees them: an absolute symlink inside the rootfs points
into the rootfs, never at the host's files.
"""

from __future__ import annotations

import os
from pathlib import Path

from richc.config import Init
from richc.errors import UsageError

MAX_LINKS = 40  # as the kernel's ELOOP limit
SYSTEMD_BINARIES = ("lib/systemd/systemd", "usr/lib/systemd/systemd")
SCAN_BYTES = 4 << 20


def resolve_in_root(root: Path, relpath: str) -> Path | None:
    """The host path of *relpath* inside *root*, following symlinks chroot-style.

    Returns None when it does not exist (or loops).
    """
    parts = [p for p in relpath.strip("/").split("/") if p]
    current: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = root.joinpath(*current, part)
        if candidate.is_symlink():
            hops += 1
            if hops > MAX_LINKS:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        if not candidate.exists() and not candidate.is_symlink():
            return None
        current.append(part)
    return root.joinpath(*current)


def _init_from_binary(path: Path) -> Init | None:
    name = path.name
    if name == "systemd":
        return Init.systemd
    if name == "busybox":
        return Init.busybox
    try:
        with open(path, "rb") as handle:
            data = handle.read(SCAN_BYTES)
    except OSError:
        return None
    if b"BusyBox" in data:
        return Init.busybox
    if b"systemd" in data and b"--system" in data:
        return Init.systemd
    if b"upstart" in data.lower():
        return None
    if b"inittab" in data:
        return Init.sysvinit
    return None


def systemd_binary(root: Path) -> Path | None:
    for relpath in SYSTEMD_BINARIES:
        found = resolve_in_root(root, relpath)
        if found is not None and found.is_file():
            return found
    return None


def detect(root: Path) -> Init:
    """The init the rootfs at *root* boots, or a UsageError pointing at ``--init dumb-init``."""
    init = resolve_in_root(root, "sbin/init")
    if init is not None and init.is_file():
        found = _init_from_binary(init)
        if found is not None:
            return found
        raise UsageError(
            f"cannot tell which init /sbin/init ({init.relative_to(root)}) is",
            hint="say it with --init systemd, sysvinit or busybox; or run one program"
            " under a reaper with --init dumb-init",
        )
    if systemd_binary(root) is not None:
        return Init.systemd
    raise UsageError(
        "the root filesystem has no init (/sbin/init is missing)",
        hint="run a single program in it with --init dumb-init (the config's `command`,"
        " /bin/sh by default)",
    )


def check(root: Path, init: Init) -> None:
    """Fail early when the asked-for init is not in the rootfs."""
    if init is Init.dumb_init:
        return
    if init is Init.systemd:
        if systemd_binary(root) is None:
            raise UsageError(
                "--init systemd, but the root filesystem has no systemd",
                hint="use --init auto to detect its init",
            )
        return
    target = resolve_in_root(root, "sbin/init")
    if target is None or not target.is_file():
        raise UsageError(
            f"--init {init.value}, but the root filesystem has no /sbin/init",
            hint="run a single program in it with --init dumb-init",
        )
    found = _init_from_binary(target)
    if found is not None and found is not init:
        raise UsageError(
            f"--init {init.value}, but /sbin/init is {found.value}",
            hint=f"use --init {found.value} or --init auto",
        )
