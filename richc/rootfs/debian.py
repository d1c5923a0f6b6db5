"""The ``debian:SUITE`` source: a debootstrap minbase tree, built once per suite and init.

The tree is cached under the store's images directory as ``debian-SUITE-INIT/rootfs`` and
never changed after it is built, so containers can share it (see :mod:`richc.rootfs.share`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path

from richc.config import Init
from richc.errors import CommandFailed, RichcError, UsageError
from richc.lock import locked
from richc.paths import HostPaths
from richc.rootfs.mirror import debian_mirror
from richc.rootfs.progress import progress
from richc.run import run, which
from richc.state import now
from richc.store import write_atomic

log = logging.getLogger("richc.rootfs")

# What each init's image holds on top of minbase: the init itself, ps/top and `ip`.
PACKAGES = {
    "systemd": ("systemd-sysv", "procps", "iproute2"),
    "sysvinit": ("sysvinit-core", "procps", "iproute2"),
}
BUILD_WAIT = 1800.0  # a second create of the same suite waits for the first one's debootstrap
# Per-host files debootstrap leaves behind; each container gets its own at create.
HOST_LEAKS = ("etc/hostname", "etc/resolv.conf")


def image_flavour(init: Init) -> str:
    """Which cached image a debian create uses for *init*."""
    if init in (Init.auto, Init.systemd, Init.dumb_init):
        return "systemd"
    if init is Init.sysvinit:
        return "sysvinit"
    raise UsageError(
        f"--init {init.value} does not go with a debian: source",
        hint="use --init systemd (the default), sysvinit or dumb-init",
    )


def image_dir(paths: HostPaths, suite: str, flavour: str) -> Path:
    return paths.images / f"debian-{suite}-{flavour}"


def cached(paths: HostPaths, suite: str, init: Init) -> Path | None:
    rootfs = image_dir(paths, suite, image_flavour(init)) / "rootfs"
    return rootfs if rootfs.is_dir() else None


def _debootstrap(suite: str, flavour: str, target: Path, mirror: str) -> None:
    if which("debootstrap") is None:
        raise RichcError(
            "debootstrap is not installed", hint="install it with `apt-get install debootstrap`"
        )
    argv = [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(PACKAGES[flavour]),
        suite,
        str(target),
        mirror,
    ]
    try:
        with progress(f"debootstrap {suite} ({flavour})", target.parent, by_child=False):
            run(argv, timeout=3600)
    except CommandFailed as exc:
        text = exc.stderr + "\n" + _debootstrap_log(target)
        if "No space left on device" in text:
            raise RichcError(
                f"no space left on device while debootstrapping {suite} into {target.parent}",
                hint="free some space there and create again",
            ) from None
        if "Failed getting release file" in text or ("Release" in text and "404" in text):
            raise UsageError(
                f"the mirror {mirror} has no suite {suite!r}",
                hint="use a suite the mirror serves, e.g. debian:bookworm",
            ) from None
        last = [line for line in text.strip().splitlines() if line.startswith("E:")]
        raise RichcError(
            f"debootstrap {suite} failed: {last[-1] if last else exc.message}",
            hint=f"check the mirror {mirror} (from the host's apt sources) and the network",
        ) from None


def _debootstrap_log(target: Path) -> str:
    try:
        return (target / "debootstrap/debootstrap.log").read_text(errors="replace")[-4000:]
    except OSError:
        return ""


def _tidy(rootfs: Path) -> None:
    """Drop what is the host's or only a download cache: ~40 MB of .debs per image."""
    for relpath in HOST_LEAKS:
        (rootfs / relpath).unlink(missing_ok=True)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (rootfs / cache).glob("*"):
            if entry.is_file():
                entry.unlink()
    machine_id = rootfs / "etc/machine-id"
    if machine_id.exists():
        # Empty: every container gets its own at create (richc.rootfs.inits).
        machine_id.write_text("")


def _discard(tree: Path) -> None:
    """Remove a half-built tree, first unmounting what a killed debootstrap left mounted
    in it (/proc, /sys in the chroot), so rmtree never walks into the host's proc or sys."""
    from richc.mountinfo import mounts_under

    for mount_point in reversed(mounts_under(tree)):
        with contextlib.suppress(CommandFailed):
            run(["umount", "--lazy", mount_point])
    shutil.rmtree(tree, ignore_errors=True)


def ensure_image(paths: HostPaths, suite: str, init: Init) -> Path:
    """The cached rootfs for *suite* with *init*'s image, debootstrapped on first use."""
    flavour = image_flavour(init)
    image = image_dir(paths, suite, flavour)
    rootfs = image / "rootfs"
    if rootfs.is_dir():
        return rootfs
    paths.images.mkdir(parents=True, exist_ok=True)
    lock = paths.locks / f"image-{image.name}.lock"
    with locked(lock, f"the image {image.name}", wait=BUILD_WAIT):
        if rootfs.is_dir():
            return rootfs
        mirror = debian_mirror()
        # We hold the lock, so any other temporary tree is a dead build's leftover.
        for stale in paths.images.glob(f".{image.name}.tmp-*"):
            _discard(stale)
        tmp = image.with_name(f".{image.name}.tmp-{os.getpid()}")
        try:
            tmp.mkdir(parents=True)
            log.info("debootstrap %s (%s) from %s", suite, flavour, mirror)
            _debootstrap(suite, flavour, tmp / "rootfs", mirror)
            _tidy(tmp / "rootfs")
            meta = {
                "source": f"debian:{suite}",
                "init": flavour,
                "mirror": mirror,
                "packages": list(PACKAGES[flavour]),
                "created_at": now(),
            }
            write_atomic(tmp / "image.json", json.dumps(meta, indent=2) + "\n")
            shutil.rmtree(image, ignore_errors=True)
            tmp.rename(image)
        except BaseException:
            _discard(tmp)
            raise
    return rootfs
