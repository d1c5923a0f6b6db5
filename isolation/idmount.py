"""Idmapped mounts: a bind mount through which files show other owners, without a chown.

``idmapped_bind(src, dst, idmap)`` clones the tree at *src* (open_tree with
OPEN_TREE_CLONE), marks the detached clone idmapped with a user namespace holding *idmap*
(mount_setattr with MOUNT_ATTR_IDMAP) and attaches it at *dst* (move_mount). A file owned by
uid 0 on disk then shows as ``idmap.host_uid_start`` through *dst*, which the container's
user namespace sees as its root; files the container creates land on disk as uid 0.

FINDINGS (this host: Debian 12, kernel 6.18, LXC 5.0.2, runc 1.1.5, measured with
``supports_idmap`` and tests/integration/test_isolation_pkg.py):

- ext4 (the host's /), xfs, btrfs and tmpfs accept idmapped mounts (upstream: ext4 and
  xfs since 5.12, btrfs 5.15, tmpfs 6.3). Measured: a file owned by 0 on disk shows as
  100000 through the mount; one the container's root creates through it lands on disk as
  0; host root itself is unmapped there (EOVERFLOW when it creates a file), so richc
  writes through the original path, never through the idmapped one.
- overlayfs refuses (EINVAL): an overlay mount cannot itself be idmapped. What works
  (upstream since 5.19; measured here) is an overlay whose *lower* layer is an
  idmapped mount of the shared image: richc idmaps the image per container, keeps the
  container's upper and work directories plain (the upper root chowned to the
  container's root; files copied up or created land in the container's host range, which
  is right for a per-container layer), and mounts the overlay on top. An idmapped *upper*
  layer does not work when host root mounts the overlay: overlayfs creates its work
  directory with the mounter's credentials, which are unmapped there (EOVERFLOW), and
  falls back to a read-only mount.
- A bind mount (``mount --rbind``) of an idmapped mount keeps the idmapping, so the
  idmapped tree can be handed to a runtime that binds it again (measured).
- LXC 5.0.2: ``lxc.rootfs.options = idmap=container`` works with a ``dir:`` rootfs on ext4
  (the container's / is an idmapped mount, mountinfo says ``idmapped``); measured with
  lxc-start in tests/integration/test_isolation_runtimes_raw.py. For an overlay rootfs
  richc mounts the overlay itself as above and gives LXC the merged directory, without
  ``idmap=``.
- runc 1.1.5 (Debian 12) has no idmapped mount support of its own (runc 1.2 added the
  ``idmap`` option for bind mounts; the rootfs never). It works with a rootfs richc has
  idmapped beforehand: ``idmapped_bind(rootfs, bundle/rootfs, idmap)`` plus
  ``linux.uidMappings``/``gidMappings`` and a ``user`` namespace (measured with runc run).
- Where none of this is available (another filesystem, an older kernel, ENOSYS),
  :mod:`isolation.shift` chowns the tree once instead.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from isolation._libc import (
    NR_mount_setattr,
    NR_move_mount,
    NR_open_tree,
    check,
    libc,
)
from isolation.errors import IdmapUnsupported, StrPath
from isolation.idmap import IdMap
from isolation.userns import userns

# <linux/fcntl.h>
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

# <linux/mount.h>
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004
MOUNT_ATTR_RDONLY = 0x00000001
MOUNT_ATTR_IDMAP = 0x00100000

# <sys/mount.h>
MNT_DETACH = 2


class MountAttr(ctypes.Structure):
    """``struct mount_attr`` of <linux/mount.h> (MOUNT_ATTR_SIZE_VER0, 32 bytes)."""

    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def open_tree(path: StrPath, flags: int, *, dirfd: int = AT_FDCWD) -> int:
    """An fd for the mount at *path*; with OPEN_TREE_CLONE, a detached copy of it that
    vanishes when the fd is closed unless it is attached first."""
    fd = libc().syscall(
        ctypes.c_long(NR_open_tree),
        ctypes.c_int(dirfd),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.c_uint(flags),
    )
    return check(fd, path, "open_tree")


def mount_setattr(
    fd: int, attr: MountAttr, *, recursive: bool, path: StrPath | None = None
) -> None:
    """Change the attributes of the mount (tree) behind *fd*."""
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    result = libc().syscall(
        ctypes.c_long(NR_mount_setattr),
        ctypes.c_int(fd),
        ctypes.c_char_p(b""),
        ctypes.c_uint(flags),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    check(result, path, "mount_setattr")


def move_mount(fd: int, to_path: StrPath, *, to_dirfd: int = AT_FDCWD) -> None:
    """Attach the detached mount behind *fd* at *to_path*."""
    result = libc().syscall(
        ctypes.c_long(NR_move_mount),
        ctypes.c_int(fd),
        ctypes.c_char_p(b""),
        ctypes.c_int(to_dirfd),
        ctypes.c_char_p(os.fsencode(to_path)),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
    )
    check(result, to_path, "move_mount")


def umount(path: StrPath, *, lazy: bool = False) -> None:
    check(libc().umount2(os.fsencode(path), MNT_DETACH if lazy else 0), path, "umount2")


def _unsupported(exc: OSError, path: StrPath) -> OSError:
    """A clearer error for the ways mount_setattr refuses an idmap."""
    fstype = filesystem_type(path)
    if exc.errno == errno.EINVAL:
        return IdmapUnsupported(
            f"the {fstype} filesystem here does not support idmapped mounts",
            path,
            hint="richc shifts the rootfs ownership once instead (slower create, same result)",
        )
    if exc.errno == errno.EPERM:
        return IdmapUnsupported(
            f"an idmapped mount of this {fstype} mount is not allowed "
            "(needs CAP_SYS_ADMIN, a mount not idmapped already, and no locked mount flags)",
            path,
            hint="run richc as root; the ownership shift works everywhere",
        )
    return exc


def clone_idmapped(
    src: StrPath, userns_fd: int, *, recursive: bool = True, readonly: bool = False
) -> int:
    """A detached, idmapped clone of the tree at *src*, as an fd: attach it with
    :func:`move_mount` (possibly from another mount namespace) or close it to drop it."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    fd = open_tree(src, flags)
    try:
        attr = MountAttr(
            attr_set=MOUNT_ATTR_IDMAP | (MOUNT_ATTR_RDONLY if readonly else 0),
            userns_fd=userns_fd,
        )
        try:
            mount_setattr(fd, attr, recursive=recursive, path=src)
        except OSError as exc:
            raise _unsupported(exc, src) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def idmapped_bind(
    src: StrPath, dst: StrPath, idmap: IdMap, *, recursive: bool = True, readonly: bool = False
) -> None:
    """Bind *src* at *dst* (an existing directory or file) so that its files show the
    owners *idmap* gives them. Undo with :func:`unmount`."""
    with userns(idmap) as ns:
        fd = clone_idmapped(src, ns, recursive=recursive, readonly=readonly)
    try:
        move_mount(fd, dst)
    finally:
        os.close(fd)


def unmount(dst: StrPath, *, recursive: bool = True) -> None:
    """Remove the idmapped mount at *dst*; *recursive* detaches submounts with it (a
    recursive bind carries them)."""
    umount(dst, lazy=recursive)


@contextmanager
def idmapped(src: StrPath, dst: StrPath, idmap: IdMap, *, readonly: bool = False) -> Iterator[Path]:
    """``with idmapped(src, dst, idmap) as path``: the idmapped bind, unmounted on exit."""
    idmapped_bind(src, dst, idmap, readonly=readonly)
    try:
        yield Path(dst)
    finally:
        unmount(dst)


# --- probing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdmapSupport:
    """Whether the filesystem holding ``path`` takes idmapped mounts, and why not."""

    path: str
    fstype: str
    supported: bool
    reason: str

    def __bool__(self) -> bool:
        return self.supported


# A throwaway mapping for probes: any valid one does.
_PROBE_MAP = IdMap.of(100000, 65536)


def supports_idmap(path: StrPath) -> IdmapSupport:
    """Ask the kernel whether the mount holding *path* can be idmapped: a detached,
    non-recursive clone is made idmapped and dropped again. Nothing is written to the
    filesystem and nothing is attached anywhere."""
    fstype = filesystem_type(path)
    try:
        with userns(_PROBE_MAP) as ns:
            fd = clone_idmapped(path, ns, recursive=False)
        os.close(fd)
    except OSError as exc:
        return IdmapSupport(os.fspath(path), fstype, False, str(exc))
    return IdmapSupport(os.fspath(path), fstype, True, f"{fstype} accepts idmapped mounts")


def mount_points() -> list[str]:
    """Every mount point of this mount namespace, in mountinfo order (octal escapes
    such as ``\\040`` for a space undone)."""
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    return [_unescape(line.split()[4]) for line in lines if len(line.split()) > 4]


def _unescape(field: str) -> str:
    """A mountinfo path field as a path: the kernel writes space, tab, newline and
    backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def is_mount_point(path: StrPath) -> bool:
    """Whether something is mounted at *path* (from mountinfo: ``os.path.ismount`` misses
    a bind mount of a directory of the same filesystem)."""
    return os.path.realpath(path) in mount_points()


def filesystem_type(path: StrPath) -> str:
    """The filesystem type of the mount holding *path* (from /proc/self/mountinfo), or
    ``unknown``: the deepest mount point above *path*, preferring one whose device matches
    (btrfs reports another anonymous device for a subvolume than its mountinfo line)."""
    try:
        dev = os.stat(path).st_dev
        real = os.path.realpath(path)
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return "unknown"
    best: tuple[bool, int, str] = (False, -1, "unknown")
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        point = _unescape(fields[4])
        if not (real == point or real.startswith(point.rstrip("/") + "/")):
            continue
        major, minor = (int(x) for x in fields[2].split(":"))
        candidate = (os.makedev(major, minor) == dev, len(point), right.split()[0])
        # A deeper mount point wins; at equal depth (mounts stacked on one point) the last
        # line is the visible mount, unless only an earlier one matches the device.
        if candidate[1] > best[1] or (candidate[1] == best[1] and candidate[0] >= best[0]):
            best = candidate
    return best[2]
