"""An overlay rootfs shared between unprivileged containers, and how a rootfs gets the
container's ownership (idmapped mount or one-time shift).

An overlay mount cannot be idmapped itself, but its layers can (see the findings in
:mod:`isolation.idmount`). For an image shared by many containers, each with its own id
range:

1. :func:`mount_lower_view` binds the image, idmapped and read-only, at a per-container
   directory (``overlay/lower`` beside the upper and work directories);
2. :func:`own_upper` gives the container's root the upper directory's root (the merged
   tree's ``/`` takes its owner and mode from it), when it still belongs to host root;
3. the overlay is mounted as before, with ``lowerdir=`` the view, and the merged tree is
   handed to the runtime as a plain directory (no ``idmap=`` for LXC, no idmapped bind for
   runc): the image shows the container's ids through the view, and everything the
   container writes lands in its upper layer with its host ids;
4. on removal, the overlay is unmounted first, then :func:`unmount_lower_view`.

The image itself is never written. A container converted from privileged keeps an upper
layer with host-root-owned files: ``shift.shift_tree(upper, start)`` moves them once (the
upper layer is small), and ``shift.unshift_tree(upper)`` is the way back for
``--privileged``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from isolation import idmount
from isolation.errors import StrPath
from isolation.idmap import IdMap


class Method(StrEnum):
    """How a container's rootfs gets its ownership."""

    IDMAP = "idmap"  # an idmapped mount: nothing on disk changes
    SHIFT = "shift"  # a one-time chown of the tree by the range's start


@dataclass(frozen=True)
class OwnershipPlan:
    method: Method
    reason: str
    fstype: str


def plan_ownership(path: StrPath) -> OwnershipPlan:
    """Which :class:`Method` a rootfs (or, for a shared overlay, its image) at *path* gets,
    and why: what ``richc doctor`` and the dry-run plan say."""
    support = idmount.supports_idmap(path)
    if support:
        return OwnershipPlan(
            Method.IDMAP, f"{support.fstype} supports idmapped mounts: no chown", support.fstype
        )
    return OwnershipPlan(
        Method.SHIFT,
        f"{support.reason}; the rootfs is chowned once at create instead",
        support.fstype,
    )


def mount_lower_view(image: StrPath, view: StrPath, idmap: IdMap) -> None:
    """Bind *image* read-only and idmapped at *view* (created if missing), to serve as an
    overlay's lower layer."""
    Path(view).mkdir(mode=0o755, parents=True, exist_ok=True)
    idmount.idmapped_bind(image, view, idmap, readonly=True)


def unmount_lower_view(view: StrPath) -> None:
    """Remove the view (after the overlay above it is gone); absent views are fine."""
    if idmount.is_mount_point(view):
        idmount.unmount(view)


def own_upper(upper: StrPath, idmap: IdMap) -> bool:
    """Give the upper directory's root to the container's root, if host root still owns
    it; True if it changed. Its contents are the caller's (see the module docstring)."""
    st = os.lstat(upper)
    if (st.st_uid, st.st_gid) != (0, 0):
        return False
    os.chown(upper, idmap.host_uid_start, idmap.host_gid_start)
    return True


def overlay_options(lowers: list[StrPath], upper: StrPath, work: StrPath) -> str:
    """The ``-o`` text of an overlay mount. Paths holding the option separators (``,``
    ``:`` ``\\``) are refused rather than escaped: richc makes these paths itself."""
    for path in [*lowers, upper, work]:
        text = os.fspath(path)
        if any(c in text for c in ",:\\"):
            raise ValueError(f"{text!r}: an overlay layer path cannot hold , : or \\")
    lowerdir = ":".join(os.fspath(p) for p in lowers)
    return f"lowerdir={lowerdir},upperdir={os.fspath(upper)},workdir={os.fspath(work)}"
