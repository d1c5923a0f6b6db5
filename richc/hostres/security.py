"""A container's isolation as a host resource: its user-namespace id range, how its rootfs
shows the container's ids, its seccomp filter and AppArmor profile (issue 17).

The glue between richc and the standalone ``isolation`` package:

* at create, :func:`reserve` takes a free 65536-id range from ROOT/etc/subuid and
  /etc/subgid (entries of the user ``richc``) and records it in ``state.security`` before
  anything is made (``--privileged`` records only that); once the rootfs is populated,
  :func:`own_rootfs` makes it show the container's ids: a shared image already does
  (an idmapped lower view, :mod:`richc.rootfs.share`; only the container's upper layer,
  which richc just wrote as host root, is shifted), a tree of its own gets an idmapped
  mount from the runtime where its filesystem takes one, else a one-time shift;
* ``prepare`` loads richc's AppArmor profile where AppArmor is enabled;
* ``contribute`` gives the spec its :class:`~isolation.policy.SecurityPolicy`;
* ``release`` (rm) gives the id range back.

A state without the record (a container made before this) is privileged, with no filter
and no masked paths, exactly as it was created; ``inspect`` says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from richc.errors import HostUnsupported, RichcError, RuntimeFailure, UsageError
from richc.hostres import BaseResource, Contribution
from richc.state import SecurityRecord, State

if TYPE_CHECKING:
    from isolation.idmap import IdMap
    from isolation.policy import SecurityPolicy
    from richc import config as cfg
    from richc.context import Context
    from richc.store import ContainerDir

log = logging.getLogger("richc.security")

OVERLAY = "overlay"  # a shared image: idmapped lower view, shifted upper layer
IDMAP = "idmap"  # the runtime gets an idmapped mount of the container's own tree
SHIFT = "shift"  # the container's own tree was chowned once at create

LEGACY = (
    "created before richc's secure defaults: container root is host root, no seccomp "
    "filter, no masked paths (re-create it for the defaults)"
)


def wrap(exc: OSError) -> RichcError:
    """The RichcError a user sees for an isolation failure."""
    from isolation.errors import (
        IdmapUnsupported,
        IdRangeExhausted,
        InvalidProfile,
        IsolationError,
        KernelTooOld,
        SubIdFileInvalid,
    )

    if not isinstance(exc, IsolationError):
        return RichcError(f"isolation: {exc}")
    if isinstance(exc, InvalidProfile):
        return UsageError(f"seccomp profile {exc!s}", hint=exc.hint)
    if isinstance(exc, IdmapUnsupported | KernelTooOld):
        return HostUnsupported(str(exc), hint=exc.hint or "create it with --privileged")
    if isinstance(exc, IdRangeExhausted | SubIdFileInvalid):
        return RichcError(str(exc), hint=exc.hint)
    return RichcError(str(exc), hint=exc.hint)


def idmap_of(state: State) -> IdMap | None:
    """The container's id map, or None when it is privileged (or made before)."""
    record = state.security
    if record is None or record.privileged or record.id_start is None:
        return None
    from isolation.idmap import IdMap

    return IdMap.of(record.id_start, record.id_count)


def reserve(ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State) -> None:
    """Record the container's isolation before its rootfs exists: ``--privileged``, or a
    fresh id range (written to subuid/subgid under their lock, then to the state at once,
    so `rm --force` after a crash gives it back)."""
    if config.security.privileged:
        state.security = SecurityRecord(privileged=True)
        cdir.save_state(state)
        return
    from isolation import idmap

    try:
        reserved = idmap.reserve(ctx.paths.root, grant_root=_grant_root())
    except OSError as exc:
        raise wrap(exc) from None
    state.security = SecurityRecord(
        privileged=False, id_start=reserved.host_uid_start, id_count=reserved.count
    )
    cdir.save_state(state)
    # The runtimes set up the rootfs as the container's root: it must be able to walk into
    # the container's directory (0750), and no other container's root may.
    os.chown(cdir.path, -1, reserved.host_gid_start)
    log.debug("%s: host ids %d-%d", cdir.name, reserved.host_uid_start, reserved.uid_range.end - 1)


def _grant_root() -> str | None:
    """Where LXC's newuidmap looks for root's grants (the host's /etc, whatever --root is),
    when LXC will call it; else None (root writes maps itself: no grant needed)."""
    from isolation import idmap

    return "/" if idmap.shadow_tools_used() else None


def _progress(label: str) -> Any:
    """A ``progress(done, total)`` callback drawing one line on a terminal, else None."""
    from richc.rootfs.progress import wanted

    if not wanted():
        return None

    def draw(done: int, total: int) -> None:
        sys.stderr.write(f"\r\x1b[K{label}: {done}/{total} inodes")
        if done >= total:
            sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()

    return draw


def own_rootfs(ctx: Context, cdir: ContainerDir, state: State) -> None:
    """Once the rootfs is populated: make it show the container's ids (see the module
    docstring) and record how. Idempotent: a shift is resumable and skipped when done."""
    record = state.security
    idmap = idmap_of(state)
    if record is None or idmap is None:
        return
    from isolation import overlay, shift

    try:
        if state.overlay is not None:
            # Everything in the upper layer now was written by richc as host root.
            upper = state.overlay.upper
            shift.shift_tree(upper, idmap.host_uid_start, count=idmap.count)
            from richc.rootfs import share

            share.remount(cdir, state)  # overlayfs cached the attributes from before
            method, reason = OVERLAY, "the shared image through an idmapped read-only view"
        else:
            plan = overlay.plan_ownership(cdir.rootfs)
            if plan.method is overlay.Method.IDMAP:
                method, reason = IDMAP, plan.reason
            else:
                label = f"shifting the ownership of {cdir.name}'s rootfs"
                log.info("%s (%s)", label, plan.reason)
                done = shift.shift_tree(
                    cdir.rootfs, idmap.host_uid_start, count=idmap.count, progress=_progress(label)
                )
                method, reason = SHIFT, f"{plan.reason} ({done.inodes} inodes)"
    except OSError as exc:
        raise wrap(exc) from None
    state.security = SecurityRecord(
        False, record.id_start, record.id_count, ownership=method, ownership_reason=reason
    )
    cdir.save_state(state)


@contextlib.contextmanager
def host_writes(cdir: ContainerDir, state: State) -> Iterator[None]:
    """Around writes that must keep the source's own ids in a container's tree (a live
    host's sync, `richc migrate sync`): a shifted tree is shifted back first and shifted
    again after; a tree behind an idmapped mount or a privileged one needs nothing."""
    record = state.security
    idmap = idmap_of(state)
    if record is None or idmap is None or record.ownership != SHIFT:
        yield
        return
    from isolation import shift

    try:
        shift.unshift_tree(cdir.rootfs)
    except OSError as exc:
        raise wrap(exc) from None
    yield
    try:
        shift.shift_tree(cdir.rootfs, idmap.host_uid_start, count=idmap.count)
    except OSError as exc:
        raise wrap(exc) from None


def policy(config: cfg.ContainerConfig, state: State) -> SecurityPolicy | None:
    """The spec's security policy from the record and the config (None: made before)."""
    record = state.security
    if record is None:
        return None
    from isolation import seccomp
    from isolation.policy import SecurityPolicy

    try:
        profile = seccomp.resolve(config.security.seccomp)
    except OSError as exc:
        raise wrap(exc) from None
    return SecurityPolicy(
        idmap=idmap_of(state),
        seccomp=profile,
        mask_paths=True,
        runtime_idmaps_rootfs=record.ownership == IDMAP,
        nesting=config.security.nesting,
    )


def describe(config: cfg.ContainerConfig | None, state: State) -> dict[str, Any]:
    record = state.security
    if record is None:
        return {"privileged": True, "why": LEGACY}
    out: dict[str, Any] = {"privileged": record.privileged}
    if record.privileged:
        out["why"] = "created with --privileged: container root is host root"
    else:
        out["host_ids"] = f"{record.id_start}-{(record.id_start or 0) + record.id_count - 1}"
        out["ownership"] = record.ownership
        out["ownership_reason"] = record.ownership_reason
    out["seccomp"] = config.security.seccomp if config is not None else None
    out["masked_paths"] = True
    out["nesting"] = config.security.nesting if config is not None else False
    return out


def explain_start_failure(state: State, exc: RichcError) -> RichcError:
    """*exc* with a hint naming ``--nesting`` when an unprivileged container failed to start
    in a mount namespace whose /proc or /sys is not fully visible: the kernel then refuses
    its fresh proc mount, and the runtime's own message says only "Operation not
    permitted". Checked after a failure only, as the check cannot see the kernel's
    permanently empty directories and must not refuse a start that would work."""
    if idmap_of(state) is None or not isinstance(exc, RuntimeFailure):
        return exc
    from isolation import nesting

    try:
        with open("/proc/self/mountinfo") as f:
            what = nesting.hidden(f.read())
    except OSError:
        return exc
    if what is None:
        return exc
    return RuntimeFailure(
        f"{exc.message}: {what}, so an unprivileged container cannot mount its own",
        hint="re-create the container richc runs in with --nesting (an unmasked /proc and "
        "/sys at /dev/.lxc), or create this one with --privileged",
    )


def check_path(cdir: ContainerDir, state: State) -> None:
    """Refuse a start LXC or runc would fail obscurely: the container's root must be able
    to walk down to its rootfs (LXC: "Could not access DIR")."""
    idmap = idmap_of(state)
    if idmap is None:
        return
    path = cdir.path.resolve()
    for parent in [*reversed(path.parents)]:
        st = os.stat(parent)
        if st.st_mode & 0o001 or (st.st_gid == idmap.host_gid_start and st.st_mode & 0o010):
            continue
        try:
            if "system.posix_acl_access" in os.listxattr(parent):
                continue  # an ACL may grant it: let the runtime judge
        except OSError:
            pass
        raise HostUnsupported(
            f"the container's root (host uid {idmap.host_uid_start}) cannot reach its rootfs: "
            f"{parent} is mode {stat.S_IMODE(st.st_mode):o} and has no execute bit for others",
            hint=f"`chmod o+x {parent}` or `setfacl -m u:{idmap.host_uid_start}:x {parent}`, "
            "or keep richc's root below directories others may traverse",
        )


class SecurityResource(BaseResource):
    name = "security"

    def prepare(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
    ) -> None:
        if state.security is None:
            return
        check_path(cdir, state)
        from isolation import apparmor

        if apparmor.status():  # only where richc's profile can be loaded (see HostFacts)
            try:
                apparmor.load_profile(apparmor.render_profile())
                if config.security.nesting:
                    name = apparmor.NESTING_PROFILE_NAME
                    apparmor.load_profile(apparmor.render_profile(name, nesting=True))
            except OSError as exc:
                raise wrap(exc) from None

    def contribute(self, config: cfg.ContainerConfig, state: State) -> Contribution:
        return Contribution(security=policy(config, state))

    def release(self, ctx: Context, cdir: ContainerDir, state: State) -> None:
        idmap = idmap_of(state)
        if idmap is None:
            return
        from isolation import idmap as idmaps

        try:
            # The grant goes whether or not the tools are still installed: only a line of
            # exactly this range is removed.
            idmaps.release(idmap, ctx.paths.root, grant_root="/")
        except OSError as exc:
            raise wrap(exc) from None

    def describe(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig | None, state: State
    ) -> Any:
        return describe(config, state)


RESOURCE = SecurityResource()
