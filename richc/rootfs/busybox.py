"""The ``busybox`` source: an init-capable rootfs built from the host's busybox-static."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from richc.config import ContainerConfig, Init
from richc.errors import HostUnsupported, RichcError, UsageError
from richc.lock import locked
from richc.paths import HostPaths
from richc.rootfs.edit import Edit, write_edit
from richc.rootfs.identity import identity_edits
from richc.rootfs.model import Change, RootfsResult
from richc.run import run
from richc.state import State
from richc.store import ContainerDir
from richc.templating import render

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
DIRS = (
    "bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "etc/profile.d", "dev", "proc", "sys",
    "run", "tmp", "var/log", "var/run", "root", "home", "mnt",
)  # fmt: skip


def find_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        # A dynamically linked busybox would need the host's libc inside the rootfs; a
        # static ELF has no program interpreter, whose path names ld-linux.
        if path.is_file() and b"ld-linux" not in path.read_bytes()[:4096]:
            return path
    raise HostUnsupported(
        "no statically linked busybox on this host",
        hint="install it with `apt-get install busybox-static`",
    )


def _build_image(image: Path) -> None:
    busybox = find_busybox()
    tmp = image.with_name(image.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for directory in DIRS:
        (tmp / directory).mkdir(parents=True, exist_ok=True)
    (tmp / "tmp").chmod(0o1777)
    (tmp / "root").chmod(0o700)
    shutil.copy2(busybox, tmp / "bin/busybox")
    applets = run([busybox, "--list-full"]).stdout.split()
    for applet in applets:
        link = tmp / applet
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath("/bin/busybox", "/" + os.path.dirname(applet)))
    if not (tmp / "sbin/init").exists():
        (tmp / "sbin/init").symlink_to("../bin/busybox")
    tmp.rename(image)


def image_dir(paths: HostPaths) -> Path:
    return paths.images / "busybox" / "rootfs"


def ensure_image(paths: HostPaths) -> Path:
    """The cached base tree, built once per host from busybox --list-full."""
    image = image_dir(paths)
    if image.is_dir():
        return image
    image.parent.mkdir(parents=True, exist_ok=True)
    with locked(paths.locks / "image-busybox.lock", "the busybox image"):
        if not image.is_dir():
            try:
                _build_image(image)
            except OSError as exc:
                shutil.rmtree(image.with_name(image.name + ".tmp"), ignore_errors=True)
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                raise RichcError(
                    f"{os.strerror(exc.errno)}: the filesystem of {paths.images} has no room"
                    " for the busybox image",
                    hint=f"free some space there (df {paths.images})",
                ) from None
    return image


FILES = {
    "etc/inittab": ("rootfs/busybox/inittab.j2", 0o644),
    "etc/init.d/rcS": ("rootfs/busybox/rcS.j2", 0o755),
    "etc/init.d/rcK": ("rootfs/busybox/rcK.j2", 0o755),
    "etc/passwd": ("rootfs/busybox/passwd.j2", 0o644),
    "etc/group": ("rootfs/busybox/group.j2", 0o644),
    "etc/shadow": ("rootfs/busybox/shadow.j2", 0o600),
    "etc/profile": ("rootfs/busybox/profile.j2", 0o644),
    "etc/udhcpc.script": ("rootfs/busybox/udhcpc.j2", 0o755),
}


def _edits(config: ContainerConfig) -> list[Edit]:
    context = {"name": config.name, "net": config.net}
    edits = [
        write_edit(relpath, render(template, **context), "busybox init system", mode=mode)
        for relpath, (template, mode) in FILES.items()
    ]
    if config.init is Init.dumb_init:
        from richc.rootfs.inits import reaper_edit  # with the other inits' fix-ups: ~5 ms

        edits.append(reaper_edit())
    return edits + identity_edits(config)


def _init(config: ContainerConfig) -> Init:
    return Init.busybox if config.init is Init.auto else config.init


def _rootfs_step(shared: bool, image: Path) -> Change:
    if shared:
        return Change("/", "overlay", f"shares the busybox image {image} read-only")
    return Change("/", "copy", "the busybox image (busybox-static and its applet links)")


def plan(config: ContainerConfig, paths: HostPaths) -> tuple[Init, list[Change]]:
    """What populate would do, touching nothing (``create --dry-run``)."""
    from richc.rootfs import share

    shared = config.disk.size is None and share.overlay_supported()
    step = _rootfs_step(shared, image_dir(paths))
    return _init(config), [step] + [edit.change for edit in _edits(config)]


def populate(
    config: ContainerConfig, cdir: ContainerDir, paths: HostPaths, state: State
) -> RootfsResult:
    if config.init not in (Init.auto, Init.busybox, Init.dumb_init):
        raise UsageError(
            f"--init {config.init.value} does not go with --from busybox",
            hint="use --init busybox (the default) or dumb-init",
        )
    image = ensure_image(paths)
    target = cdir.rootfs
    from richc.rootfs import share

    # Shared read-only like a debian image (see richc.rootfs.share for the measurements);
    # a --disk limit needs the tree on the quota-managed directory, so that is copied.
    shared = config.disk.size is None and share.try_mount(state, image, cdir)
    if not shared:
        run(["cp", "-a", "--reflink=auto", f"{image}/.", str(target)])
    step = _rootfs_step(shared, image)
    edits = _edits(config)
    for edit in edits:
        edit.run(target)
    return RootfsResult(init=_init(config), changes=[step] + [edit.change for edit in edits])
