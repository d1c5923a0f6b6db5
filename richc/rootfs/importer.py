"""Filling a rootfs from what ops hold: a VM disk image (read-only, through vmimport) or a
live host (rsync over ssh), and the clean-up a killed import needs.

A disk image is assembled read-only in a scratch directory inside the container's own
directory (``NAME/import``, on the same filesystem as the rootfs, which a qcow2's raw
conversion may need), then copied like a directory. Everything vmimport makes there (loop
devices, mounts, active volume groups, the converted copy) is journalled before it is
made, so ``rm --force`` or a re-run after a SIGKILL releases it (:func:`cleanup`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from richc.errors import CommandFailed, HostUnsupported, NotFound, RichcError, UsageError
from richc.rootfs.model import Change
from richc.rootfs.progress import callback

if TYPE_CHECKING:
    import vmimport
    from richc.config import ContainerConfig
    from richc.store import ContainerDir

log = logging.getLogger("richc.rootfs")

SCRATCH = "import"


def scratch_dir(cdir: ContainerDir) -> Path:
    return cdir.path / SCRATCH


def wrap(exc: vmimport.VmImportError) -> RichcError:
    """vmimport's errors as the RichcError a user sees, once."""
    import errno

    import vmimport as vi

    if isinstance(exc, vi.ImageNotFound):
        return NotFound(exc.message, hint=exc.hint)
    if isinstance(exc, vi.HostUnsupported):
        return HostUnsupported(exc.message, hint=exc.hint)
    if isinstance(exc, vi.ScratchFull) or exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UsageError(exc.message, hint=exc.hint or "free some space or use another --root")
    if isinstance(exc, vi.InvalidSource | vi.UnknownFormat | vi.CorruptImage | vi.EncryptedRoot):
        return UsageError(exc.message, hint=exc.hint)
    return RichcError(exc.message, hint=exc.hint)


def from_disk(
    image: Path, target: Path, cdir: ContainerDir, config: ContainerConfig
) -> list[Change]:
    """Copy the guest tree of the disk *image* into *target*; the image is never written."""
    import vmimport as vi
    from richc.rootfs import copy

    steps: list[Change] = []
    try:
        with vi.mounted_tree(
            image,
            scratch_dir(cdir),
            config.migrate.root_partition,
            callback(f"converting {image.name}"),
        ) as tree:
            plan = tree.plan
            copy.copy_tree(tree.path, target, f"copying {image.name}")
            steps.append(
                Change(
                    str(target),
                    "copy",
                    f"the guest tree of {image} ({tree.image.format}), root on "
                    f"{plan.root.volume.describe()} ({plan.root.fstype})",
                )
            )
            steps += [
                Change(m.target, "merge", f"the guest's {m.fstype} filesystem for {m.target}")
                for m in plan.mounts
                if m.target != "/"
            ]
            steps += [
                Change(d.target, "drop", f"{d.spec} ({d.fstype}): {d.reason}") for d in plan.dropped
            ]
    except vi.VmImportError as exc:
        raise wrap(exc) from None
    finally:
        with contextlib.suppress(OSError):
            scratch_dir(cdir).rmdir()
    return steps


def ssh_options(config: ContainerConfig) -> vmimport.SshOptions:
    import vmimport as vi

    key, known = config.migrate.ssh_key, config.migrate.known_hosts
    return vi.SshOptions(
        identity_file=Path(key) if key else None, known_hosts=Path(known) if known else None
    )


def from_host(url: str, target: Path, config: ContainerConfig) -> list[Change]:
    """Copy (or bring up to date) *target* from the live host at *url* with rsync."""
    import vmimport as vi

    try:
        result = vi.sync(
            url, target, ssh_options(config), callback(f"copying {url}"), keep=("/.richc",)
        )
    except vi.VmImportError as exc:
        raise wrap(exc) from None
    except CommandFailed as exc:  # pragma: no cover - vmimport runs rsync itself
        raise RichcError(exc.message) from None
    steps = [Change(str(target), "sync", f"rsync of {result.source} over ssh")]
    steps += [
        Change(m.target, "drop", f"a {m.fstype} mount on the live host, left out")
        for m in result.skipped
    ]
    if result.vanished:
        steps.append(Change(str(target), "note", "some files vanished while being copied"))
    return steps


def cleanup(cdir: ContainerDir) -> None:
    """Release what a killed disk import left (mounts, loop devices, volume groups, the
    converted copy); a no-op when there is nothing. Called by `rm --force` and create."""
    scratch = scratch_dir(cdir)
    if not scratch.exists():
        return
    import vmimport as vi

    try:
        vi.cleanup(scratch)
    except vi.VmImportError as exc:
        raise wrap(exc) from None
    with contextlib.suppress(OSError):
        scratch.rmdir()
