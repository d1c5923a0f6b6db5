"""The fallback where idmapped mounts are not available: shift a tree's ownership once.

``shift_tree(rootfs, 100000)`` moves every id of the tree from the range it is in now to
the range starting at 100000: owners and groups of every inode (symlinks, device nodes,
sockets and fifos included, through lchown), the named entries of POSIX ACLs and the root
id of file capabilities (see :mod:`isolation.xattrs`). chown clears the setuid and setgid
bits and drops ``security.capability``, so both are put back afterwards. A hard-linked
inode is shifted once. Only the tree's own filesystem is walked: a mount below it (a bind
of host data) is left alone, mount point included.

Idempotent and resumable: a marker file next to the tree (never inside it, where the
container would see it) records the target before the first inode changes, and the offsets
the tree's ids may still be at. Every id is moved by the range it is found in, so a walk
that was interrupted is simply run again, and shifting an already shifted tree changes
nothing. Before an inode whose setuid/setgid bits or capability chown would clear is
changed, its mode and capability go to a journal next to the marker, so an interruption
between the chown and their restoration is repaired by the next run.
``unshift_tree`` is the shift back to offset 0, for ``--privileged``.

Ids outside every known range (an unshifted tree's uid 70000) are left as they are and
counted: the container sees them as the overflow id ``nobody``.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from isolation.errors import ShiftConflict, StrPath
from isolation.idmap import COUNT, IdRange
from isolation.idmount import filesystem_type, is_mount_point, mount_points
from isolation.xattrs import (
    ACL_ACCESS,
    ACL_DEFAULT,
    CAPABILITY,
    XattrFormatError,
    capability_rootid,
    shift_acl,
    with_rootid,
)

Progress = Callable[[int, int], None]

MARKER_SUFFIX = ".richc-shift.json"
PROGRESS_EVERY = 512


@dataclass(frozen=True)
class ShiftState:
    """What the marker says: the ``offset`` the whole tree is at, or, while a shift is in
    progress (``target`` set), every offset an id of the tree may still be at."""

    count: int = COUNT
    offset: int | None = 0
    target: int | None = None
    sources: tuple[int, ...] = ()

    @property
    def in_progress(self) -> bool:
        return self.target is not None

    def possible_offsets(self) -> tuple[int, ...]:
        """Offsets the tree's ids may be at now."""
        found = [*self.sources]
        if self.offset is not None:
            found.append(self.offset)
        if self.target is not None:
            found.append(self.target)
        return tuple(sorted(set(found)))

    def to_json(self) -> str:
        if self.in_progress:
            data = {"count": self.count, "target": self.target, "sources": list(self.sources)}
        else:
            data = {"count": self.count, "offset": self.offset}
        return json.dumps(data, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, path: StrPath | None = None) -> ShiftState:
        try:
            data = json.loads(text)
            count = int(data["count"])
            if "target" in data:
                return cls(count, None, int(data["target"]), tuple(int(s) for s in data["sources"]))
            return cls(count, int(data["offset"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ShiftConflict(
                f"the shift marker cannot be read ({exc})",
                path,
                hint="if the tree was never shifted, remove the marker",
            ) from None


@dataclass(frozen=True)
class ShiftResult:
    offset: int
    inodes: int = 0
    changed: int = 0
    outside: int = 0
    warnings: tuple[str, ...] = field(default=())


def marker_path(tree: StrPath) -> Path:
    """Where the marker of *tree* lives: beside it, ``.NAME.richc-shift.json``."""
    path = Path(os.path.abspath(tree))
    return path.parent / f".{path.name}{MARKER_SUFFIX}"


def read_state(tree: StrPath, marker: StrPath | None = None) -> ShiftState:
    """The marker's state; a tree without a marker is at offset 0."""
    path = Path(marker) if marker is not None else marker_path(tree)
    try:
        return ShiftState.from_json(path.read_text(), path)
    except FileNotFoundError:
        return ShiftState()


def current_offset(tree: StrPath, marker: StrPath | None = None) -> int | None:
    """The offset the whole tree is at, or None while a shift is unfinished."""
    return read_state(tree, marker).offset


class IdMapper:
    """Moves one id from whichever known range holds it to the target range."""

    def __init__(self, sources: tuple[int, ...], target: int, count: int) -> None:
        self.target = IdRange(target, count)
        self.sources = tuple(IdRange(s, count) for s in sources if s != target)
        for src in self.sources:
            if src.overlaps(self.target):
                raise ShiftConflict(
                    f"ids at offset {src.start} and the target {target} overlap "
                    f"(ranges of {count}); a shifted id could not be told from an unshifted one",
                    hint="unshift the tree to 0 first, then shift it to the new range",
                )
        self.outside = 0

    def __call__(self, ident: int) -> int:
        if ident in self.target:
            return ident
        for src in self.sources:
            if ident in src:
                return ident - src.start + self.target.start
        self.outside += 1
        return ident


def _write_marker(path: Path, state: ShiftState) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(state.to_json())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _Journal:
    """Modes and capabilities of inodes about to be chowned (JSON lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> Iterator[tuple[str, int, bytes | None]]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the last line of a journal cut short
            cap = entry.get("cap")
            yield entry["path"], int(entry["mode"]), bytes.fromhex(cap) if cap else None

    def record(self, rel: str, mode: int, cap: bytes | None) -> None:
        line = json.dumps({"path": rel, "mode": mode, "cap": cap.hex() if cap else None})
        with open(self.path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _mount_points_below(tree: Path) -> set[str]:
    """Relative paths of the mounts below *tree*: a bind mount of the same filesystem has
    the same st_dev, so the device alone cannot tell."""
    top = os.path.realpath(tree).rstrip("/") + "/"
    return {point[len(top) :] for point in mount_points() if point.startswith(top)}


def _walk(tree: Path) -> list[str]:
    """Relative paths of every inode of *tree* on its own filesystem, the tree first."""
    top = os.lstat(tree)
    mounts = _mount_points_below(tree)
    found = [""]
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(tree / rel if rel else tree) as it:
            for entry in it:
                child = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                if st.st_dev != top.st_dev or child in mounts:
                    continue  # a mount point: another filesystem's (or a bind's) root
                found.append(child)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(child)
    return found


def _getxattr(path: Path, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def _shift_inode(
    path: Path, rel: str, ids: IdMapper, journal: _Journal, warnings: list[str]
) -> bool:
    st = os.lstat(path)
    is_link = stat.S_ISLNK(st.st_mode)
    changed = False
    cap = None
    if not is_link:
        names = os.listxattr(path, follow_symlinks=False)
        for name in (ACL_ACCESS, ACL_DEFAULT):
            if name in names:
                old = os.getxattr(path, name, follow_symlinks=False)
                try:
                    new = shift_acl(old, ids, ids)
                except XattrFormatError as exc:
                    warnings.append(f"{rel or '.'}: {name} left as it is ({exc})")
                    continue
                if new != old:
                    os.setxattr(path, name, new, follow_symlinks=False)
                    changed = True
        if CAPABILITY in names:
            cap = os.getxattr(path, CAPABILITY, follow_symlinks=False)
    uid, gid = ids(st.st_uid), ids(st.st_gid)
    if (uid, gid) != (st.st_uid, st.st_gid):
        keep = not is_link and (st.st_mode & (stat.S_ISUID | stat.S_ISGID) or cap is not None)
        if keep:
            journal.record(rel, stat.S_IMODE(st.st_mode), cap)
        os.chown(path, uid, gid, follow_symlinks=False)
        changed = True
    if cap is not None:
        changed |= _restore_capability(path, rel, cap, ids, warnings)
    if not is_link and stat.S_IMODE(os.lstat(path).st_mode) != stat.S_IMODE(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    return changed


def _restore_capability(
    path: Path, rel: str, cap: bytes, ids: IdMapper, warnings: list[str]
) -> bool:
    try:
        wanted = with_rootid(cap, ids(capability_rootid(cap)))
    except XattrFormatError as exc:
        warnings.append(f"{rel or '.'}: {CAPABILITY} left as it is ({exc})")
        return False
    if _getxattr(path, CAPABILITY) == wanted:
        return False
    os.setxattr(path, CAPABILITY, wanted, follow_symlinks=False)
    return True


def _replay(tree: Path, journal: _Journal, ids: IdMapper, warnings: list[str]) -> None:
    """Put back the modes and capabilities an interrupted run may have lost."""
    for rel, mode, cap in journal.entries():
        path = tree / rel if rel else tree
        try:
            if cap is not None:
                _restore_capability(path, rel, cap, ids, warnings)
            if stat.S_IMODE(os.lstat(path).st_mode) != mode:
                os.chmod(path, mode)
        except FileNotFoundError:
            continue


def shift_tree(
    tree: StrPath,
    offset: int,
    *,
    count: int = COUNT,
    marker: StrPath | None = None,
    progress: Progress | None = None,
) -> ShiftResult:
    """Move every id of *tree* to the range ``offset .. offset+count-1``; see the module
    docstring. *progress* is called as ``progress(done, total)`` along the way."""
    root = Path(os.path.abspath(tree))
    if filesystem_type(root) == "overlay" and is_mount_point(root):
        # Every chown through an overlay copies the file up: a shift would duplicate the
        # whole shared image into the container's upper layer. A tree that merely lives on
        # an overlay filesystem (a VM's or a container's own root) is shifted: its copies
        # up are that filesystem's business, and there is no other way to own it.
        raise ShiftConflict(
            "refusing to shift an overlay mount: it would copy every file of the image up",
            root,
            hint="shift the upper directory instead; the image is shared through an "
            "idmapped lower layer (isolation.overlay)",
        )
    marker_file = Path(marker) if marker is not None else marker_path(root)
    state = read_state(root, marker_file)
    if state.count != count:
        raise ShiftConflict(
            f"the tree was shifted with ranges of {state.count} ids, not {count}",
            marker_file,
            hint="unshift with the recorded count first",
        )
    possible = state.possible_offsets()
    journal = _Journal(marker_file.with_name(marker_file.name + ".journal"))
    if possible == (offset,) and not journal.path.exists():
        return ShiftResult(offset)
    ids = IdMapper(possible, offset, count)
    sources = tuple(s for s in possible if s != offset)
    _write_marker(marker_file, ShiftState(count, None, offset, sources))
    warnings: list[str] = []
    _replay(root, journal, ids, warnings)
    paths = _walk(root)
    seen: set[tuple[int, int]] = set()
    changed = 0
    for done, rel in enumerate(paths, 1):
        path = root / rel if rel else root
        st = os.lstat(path)
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
        changed += _shift_inode(path, rel, ids, journal, warnings)
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, len(paths))
    if progress is not None:
        progress(len(paths), len(paths))
    _write_marker(marker_file, ShiftState(count, offset))
    journal.remove()
    return ShiftResult(offset, len(paths), changed, ids.outside, tuple(warnings))


def unshift_tree(
    tree: StrPath,
    *,
    marker: StrPath | None = None,
    progress: Progress | None = None,
) -> ShiftResult:
    """Shift *tree* back to offset 0 (a privileged container's ownership) and drop the
    marker: an unshifted tree needs none."""
    root = Path(os.path.abspath(tree))
    marker_file = Path(marker) if marker is not None else marker_path(root)
    count = read_state(root, marker_file).count
    result = shift_tree(root, 0, count=count, marker=marker_file, progress=progress)
    marker_file.unlink(missing_ok=True)
    return result
