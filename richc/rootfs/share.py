"""Sharing a cached image between containers instead of copying it.

Measured on this project's hosts (ext4, a 252 MB debootstrap tree): ``cp -a`` takes
0.7-1.6 s and 252 MB per container; reflinks are not supported on ext4; an overlayfs mount
(image as the read-only lower layer, the container's changes in its own upper directory)
takes a few milliseconds and a few hundred kilobytes. The 2 MB busybox image is shared too:
its ``cp -a`` makes ~290 inodes, which took 20 to 350 ms by how churned the containers
directory was, against one mount. So overlay is the default wherever the kernel has it. A
container with a ``--disk`` limit is copied instead, so that its quota covers one
self-contained tree on the quota-managed directory.

The overlay is mounted at the container's ``rootfs`` on the host, so every part of richc
(and the runtimes, and hooks) sees a complete tree there. It is mounted at create, again at
start after a host reboot, and unmounted when the container is removed.

An unprivileged container (``state.security`` with an id range) gets the image through an
idmapped read-only view (``overlay/lower``, isolation.overlay): the image's host-root files
show as the container's root, nothing on disk changes, and what the container writes lands
in its upper layer with its own host ids. The view is mounted before the overlay and
unmounted after it. Where the image's filesystem takes no idmapped mount, the container
gets a copy instead (shifted once, richc.hostres.security).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from richc.errors import CommandFailed, RichcError
from richc.mountinfo import is_mounted
from richc.run import run
from richc.state import OverlayRecord, State
from richc.store import ContainerDir

if TYPE_CHECKING:
    from isolation.idmap import IdMap

log = logging.getLogger("richc.rootfs")


def overlay_supported() -> bool:
    try:
        with open("/proc/filesystems") as handle:
            return any(line.split()[-1] == "overlay" for line in handle if line.strip())
    except OSError:
        return False


def layer_dirs(cdir: ContainerDir) -> tuple[Path, Path]:
    """The container's upper (its own changes) and overlayfs work directory."""
    return cdir.path / "overlay/upper", cdir.path / "overlay/work"


def lower_view(cdir: ContainerDir) -> Path:
    """Where an unprivileged container's idmapped view of the image is mounted."""
    return cdir.path / "overlay/lower"


def record(state: State, image: Path, cdir: ContainerDir) -> OverlayRecord:
    upper, work = layer_dirs(cdir)
    lower = str(lower_view(cdir)) if _idmap(state) is not None else None
    state.overlay = OverlayRecord(image=str(image), upper=str(upper), work=str(work), lower=lower)
    return state.overlay


def _idmap(state: State) -> IdMap | None:
    record = state.security
    if record is None or record.privileged or record.id_start is None:
        return None
    from isolation.idmap import IdMap

    return IdMap.of(record.id_start, record.id_count)


def _mount_view(info: OverlayRecord, state: State) -> Path:
    """The overlay's lower layer: the image, or its idmapped view (mounted if missing)."""
    image = Path(info.image)
    idmap = _idmap(state)
    if info.lower is None or idmap is None:
        return image
    from isolation import overlay
    from isolation.errors import IsolationError

    view = Path(info.lower)
    if not is_mounted(view):
        try:
            overlay.mount_lower_view(image, view, idmap)
        except IsolationError as exc:
            raise RichcError(
                f"cannot mount an idmapped view of the image {image}: {exc}",
                hint=exc.hint or "create the container with --privileged",
            ) from None
    return view


def _unmount_view(info: OverlayRecord) -> None:
    if info.lower is None:
        return
    from isolation import overlay

    overlay.unmount_lower_view(info.lower)


def _mount(info: OverlayRecord, target: Path, state: State) -> None:
    upper, work = Path(info.upper), Path(info.work)
    image = Path(info.image)
    if not image.is_dir():
        raise RichcError(
            f"the image {image} this container's rootfs is layered on is gone",
            hint="re-create the container (the image is rebuilt on the next create)",
        )
    upper.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    upper.chmod(0o755)
    idmap = _idmap(state)
    if idmap is not None and info.lower is not None:
        from isolation import overlay

        overlay.own_upper(upper, idmap)  # the merged tree's / is the upper root
    lower = _mount_view(info, state)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    try:
        run(["mount", "-t", "overlay", "overlay", "-o", options, target])
    except CommandFailed as exc:
        _unmount_view(info)
        raise RichcError(
            f"cannot mount the overlay rootfs at {target}: {exc.message}",
            hint="the kernel needs overlayfs (`modprobe overlay`); see `richc doctor`",
        ) from None


def mount(state: State, image: Path, cdir: ContainerDir) -> None:
    """Layer the container's rootfs on *image*; record it first so a crash can be undone."""
    info = record(state, image, cdir)
    cdir.save_state(state)
    cdir.rootfs.mkdir(mode=0o755, exist_ok=True)
    _mount(info, cdir.rootfs, state)


def try_mount(state: State, image: Path, cdir: ContainerDir) -> bool:
    """:func:`mount`, or False where overlayfs is missing or refused (a nested container
    whose AppArmor profile denies the mount), leaving no record and no layers behind."""
    if not overlay_supported():
        return False
    try:
        mount(state, image, cdir)
    except RichcError as exc:
        log.debug("overlay rootfs refused, copying instead: %s", exc.message)
        if state.overlay is not None:
            _unmount_view(state.overlay)
        state.overlay = None
        cdir.save_state(state)
        shutil.rmtree(cdir.path / "overlay", ignore_errors=True)
        return False
    return True


def remount(cdir: ContainerDir, state: State) -> None:
    """Mount the overlay afresh: after its upper layer was changed behind its back (the
    shift at create), overlayfs would keep serving the attributes it cached, the pinned
    root's above all (a root owned by host root is no one's in the container: EACCES on
    every create in /)."""
    if state.overlay is None:
        return
    _unmount_overlay(cdir)
    _mount(state.overlay, cdir.rootfs, state)


def activate(cdir: ContainerDir, state: State) -> None:
    """Before a start: mount the overlay again if a reboot (or an admin) unmounted it."""
    if state.overlay is None or is_mounted(cdir.rootfs):
        return
    _mount(state.overlay, cdir.rootfs, state)


def release(cdir: ContainerDir, state: State) -> None:
    """Unmount the overlay, then the image's view (idempotent); the store then deletes the
    upper layer with the rest."""
    if state.overlay is None:
        return
    if cdir.rootfs.exists():
        _unmount_overlay(cdir)
    _unmount_view(state.overlay)


def _unmount_overlay(cdir: ContainerDir) -> None:
    while is_mounted(cdir.rootfs):
        try:
            run(["umount", cdir.rootfs])
        except CommandFailed as exc:
            # Busy (a shell's cwd, a leftover process): detach it; the kernel frees it later.
            try:
                run(["umount", "--lazy", cdir.rootfs])
            except CommandFailed:
                raise RichcError(
                    f"cannot unmount the rootfs of {cdir.name}: {exc.message}",
                    hint=f"see who uses it with `fuser -vm {cdir.rootfs}`, then retry",
                ) from None
