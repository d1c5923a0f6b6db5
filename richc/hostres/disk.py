"""Disk quotas for containers: the glue between richc and the standalone ``quota`` package.

The backend chosen at create time is recorded in ``state.disk`` *before* anything is
made, so ``rm --force`` after a crash knows what to undo. Errors from ``quota`` (real
OSErrors) become typed RichcErrors here, once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from richc import config as cfg
from richc.context import Context
from richc.errors import (
    CommandFailed,
    Conflict,
    HostUnsupported,
    NotFound,
    RichcError,
    UsageError,
)
from richc.hostres import BaseResource, Contribution
from richc.state import DiskRecord, State
from richc.store import ContainerDir

if TYPE_CHECKING:  # imported where used: a start without --disk never needs the backends
    import quota

log = logging.getLogger("richc.disk")

# A container whose disk is limited must not hold CAP_SYS_RESOURCE: with it, root inside
# writes straight past ext4 quota limits and reserved blocks (TESTING.md, measured).
LIMITED_CAP_DROP = ("sys_resource",)
BEST_EFFORT = "best-effort"


def _store(ctx: Context) -> str:
    return os.fspath(ctx.paths.containers)


def _registry(ctx: Context) -> str:
    return os.fspath(ctx.paths.quota_registry)


def backend(ctx: Context, name: str) -> quota.QuotaBackend:
    import quota

    return quota.make_backend(name, _store(ctx), registry=_registry(ctx))


def wrap(exc: OSError) -> RichcError:
    """The RichcError a user sees for a quota failure."""
    import quota

    if not isinstance(exc, quota.QuotaError):
        return RichcError(f"disk quota: {exc}")
    hint = exc.hint
    if isinstance(exc, quota.InvalidInodeLimit):
        return UsageError(f"disk.inodes: {exc.message}", hint=hint)
    if isinstance(exc, quota.InvalidLimit):
        return UsageError(f"disk.size: {exc.message}", hint=hint)
    if isinstance(exc, quota.QuotaExceeded | quota.ResizeUnsupported):
        return Conflict(exc.message, hint=hint)
    if isinstance(exc, quota.NotManaged):
        return NotFound(exc.message, hint=hint)
    if isinstance(
        exc,
        quota.BackendUnavailable
        | quota.KernelTooOld
        | quota.QuotaUnsupported
        | quota.QuotaNotEnabled,
    ):
        return HostUnsupported(
            exc.message,
            hint=hint
            or "choose another --disk-backend, or --disk-quota-mode best-effort to "
            "create it without a limit",
        )
    return RichcError(exc.message, hint=hint)


def cap_drop(config: cfg.ContainerConfig) -> tuple[str, ...]:
    return LIMITED_CAP_DROP if config.disk.size is not None else ()


def create_rootfs(
    ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
) -> None:
    """Make the container's rootfs directory, under a disk limit when one is asked for.

    Fails closed: when no backend can enforce the size (and the inode limit, if one is
    asked for) the create fails, unless the config says ``disk.mode: best-effort``, which
    warns and goes on with what can be enforced: the size alone, or no limit.
    """
    size = config.disk.size
    if size is None:
        cdir.rootfs.mkdir(mode=0o755)
        return
    import quota

    inodes = config.disk.inodes
    unenforced: str | None = None
    try:
        chosen = _select(ctx, config, inodes=inodes is not None)
    except quota.QuotaError as exc:
        if config.disk.mode != BEST_EFFORT:
            raise wrap(exc) from None
        fallback = None
        if inodes is not None:
            with contextlib.suppress(quota.QuotaError):
                fallback = _select(ctx, config, inodes=False)
        if fallback is None:
            log.warning(
                "warning: %s; creating %s without a disk limit (best-effort)",
                exc.message,
                config.name,
            )
            state.disk = DiskRecord(backend=None, unenforced=exc.message)
            cdir.rootfs.mkdir(mode=0o755)
            return
        log.warning(
            "warning: %s; creating %s with a disk size limit but no inode limit (best-effort)",
            exc.message,
            config.name,
        )
        chosen, inodes, unenforced = fallback, None, exc.message
    log.debug(
        "disk: %s backend, %d bytes, %s inodes for %s", chosen.name, size, inodes, cdir.rootfs
    )
    state.disk = DiskRecord(chosen.name, size, inodes, unenforced)
    cdir.save_state(state)
    try:
        chosen.prepare(cdir.rootfs, size, inodes)
    except OSError as exc:
        raise wrap(exc) from None
    os.chmod(cdir.rootfs, 0o755)


def _select(ctx: Context, config: cfg.ContainerConfig, *, inodes: bool) -> quota.QuotaBackend:
    import quota

    return quota.select_backend(
        _store(ctx), config.disk.backend, registry=_registry(ctx), inodes=inodes
    )


def _recorded(state: State) -> str | None:
    return state.disk.backend if state.disk is not None else None


def activate(ctx: Context, cdir: ContainerDir, state: State) -> None:
    """Before a start: remount a loop image after a reboot, re-check enforcement."""
    name = _recorded(state)
    if name is None:
        return
    try:
        backend(ctx, name).activate(cdir.rootfs)
    except OSError as exc:
        raise wrap(exc) from None


def release(ctx: Context, cdir: ContainerDir, state: State) -> None:
    """Remove the limit, the subvolume or the image and its loop device (idempotent)."""
    name = _recorded(state)
    if name is None:
        return
    try:
        backend(ctx, name).remove(cdir.rootfs)
    except OSError as exc:
        raise wrap(exc) from None


def view(ctx: Context, cdir: ContainerDir, state: State) -> dict[str, Any]:
    """``disk`` as inspect shows it: the backend, and the limit and usage read live."""
    info = state.disk or DiskRecord(backend=None)
    out: dict[str, Any] = {
        "backend": info.backend,
        "limit_bytes": info.limit_bytes,
        "used_bytes": None,
        "limit_inodes": info.limit_inodes,
        "used_inodes": None,
    }
    name = _recorded(state)
    if name is not None and cdir.rootfs.exists():
        try:
            usage = backend(ctx, name).usage(cdir.rootfs)
        except OSError as exc:
            log.debug("disk usage of %s: %s", cdir.name, exc)
        else:
            out["limit_bytes"], out["used_bytes"] = usage.limit_bytes, usage.used_bytes
            out["limit_inodes"], out["used_inodes"] = usage.limit_inodes, usage.used_inodes
    if info.unenforced:
        out["unenforced"] = info.unenforced
    return out


def set_size(
    ctx: Context, name: str, size: int | None, inodes: int | None = None
) -> dict[str, Any]:
    """``richc set NAME disk=SIZE disk.inodes=N``: resize live where the backend can, else
    say why not. A size of None keeps the current one, inodes of None the inode limit.
    A container created without a limit can be put under one where the backend can adopt
    an existing tree (project quota)."""
    import quota

    cdir = ctx.store.get(name)
    with cdir.lock():
        state = cdir.load_state()
        config = cdir.load_config()
        recorded = _recorded(state)
        info = state.disk or DiskRecord(backend=None)
        if size is None:
            size = info.limit_bytes if recorded is not None else None
            if not isinstance(size, int):
                raise UsageError(
                    f"{name} has no disk limit for an inode limit to go with",
                    hint=f"set a size too: richc set {name} disk=SIZE disk.inodes={inodes}",
                )
        try:
            if recorded is not None:
                backend(ctx, recorded).resize(cdir.rootfs, size, inodes)
            else:
                try:
                    chosen = _select(ctx, config, inodes=inodes is not None)
                    chosen.set_limit(cdir.rootfs, size, inodes)
                except quota.QuotaUnsupported as exc:
                    raise HostUnsupported(
                        f"cannot put {name} under a disk limit now: {exc.message}",
                        hint=exc.hint or "create the container with --disk SIZE",
                    ) from None
                recorded = chosen.name
        except OSError as exc:
            raise wrap(exc) from None
        limit_inodes = inodes if inodes is not None else info.limit_inodes
        state.disk = DiskRecord(recorded, size, limit_inodes)
        cdir.save_state(state)
        disk = dataclasses.replace(
            config.disk, size=size, inodes=inodes if inodes is not None else config.disk.inodes
        )
        cdir.save_config(dataclasses.replace(config, disk=disk))
        return view(ctx, cdir, state)


@contextlib.contextmanager
def fitting(
    ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
) -> Iterator[None]:
    """Around populating a limited rootfs: a source that does not fit is a clear error,
    also where richc itself may write past the limit (CAP_SYS_RESOURCE and ext4 quota)."""
    size = config.disk.size
    try:
        yield
    except (OSError, CommandFailed) as exc:
        # A copy in Python fails with the errno; one by cp/tar with its message.
        full = (errno.EDQUOT, errno.ENOSPC)
        text = exc.stderr if isinstance(exc, CommandFailed) else ""
        reason = next((os.strerror(e) for e in full if os.strerror(e) in text), None)
        if isinstance(exc, OSError) and exc.errno in full:
            reason = exc.strerror
        if size is None or reason is None:
            raise
        inodes = config.disk.inodes
        raise UsageError(
            f"the rootfs from {config.source} does not fit in a disk limit of {size} bytes"
            + (f" and {inodes} inodes" if inodes is not None else "")
            + f" ({reason})",
            hint="choose a larger --disk" + (" or --disk-inodes" if inodes is not None else ""),
        ) from None
    name = _recorded(state)
    if size is None or name is None:
        return
    try:
        usage = backend(ctx, name).usage(cdir.rootfs)
    except OSError as exc:
        raise wrap(exc) from None
    if usage.used_bytes > usage.limit_bytes:
        raise UsageError(
            f"the rootfs from {config.source} takes {usage.used_bytes} bytes, more than the disk "
            f"limit of {usage.limit_bytes}",
            hint="choose a larger --disk",
        )
    if usage.limit_inodes is not None and (usage.used_inodes or 0) > usage.limit_inodes:
        # richc copies with CAP_SYS_RESOURCE, which walks past a project's inode limit too.
        raise UsageError(
            f"the rootfs from {config.source} has {usage.used_inodes} files and directories, "
            f"more than the inode limit of {usage.limit_inodes}",
            hint="choose a larger --disk-inodes",
        )


class DiskResource(BaseResource):
    """The rootfs's disk quota: made at create (:func:`create_rootfs`), re-activated before
    each start, removed at rm."""

    name = "disk"

    def prepare(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
    ) -> None:
        activate(ctx, cdir, state)

    def contribute(self, config: cfg.ContainerConfig, state: State) -> Contribution:
        return Contribution(cap_drop=cap_drop(config))

    def release(self, ctx: Context, cdir: ContainerDir, state: State) -> None:
        release(ctx, cdir, state)

    def describe(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig | None, state: State
    ) -> Any:
        return view(ctx, cdir, state)


RESOURCE = DiskResource()
