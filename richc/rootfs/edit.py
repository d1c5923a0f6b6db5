"""Small, recorded edits to a root filesystem, each one planned before it is made.

Every fix-up builds :class:`Edit` objects by reading the tree; a dry run prints their
:class:`Change` records, a create applies them. Files richc replaces or removes are kept
under ``/.richc/orig/`` in the rootfs, so a migration can be reviewed or undone by hand.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from richc.rootfs.model import Change

ORIG_DIR = ".richc/orig"


def backup(root: Path, relpath: str) -> None:
    """Keep the rootfs's own *relpath* (file or symlink) under /.richc/orig, once."""
    source = root / relpath
    if not (source.exists() or source.is_symlink()):
        return
    dest = root / ORIG_DIR / relpath
    if dest.exists() or dest.is_symlink():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        dest.symlink_to(os.readlink(source))
    else:
        shutil.copy2(source, dest, follow_symlinks=False)


def _no_escape(root: Path, relpath: str) -> Path:
    """*relpath* under *root*, with no symlinked parent leading out of the rootfs."""
    target = root / relpath
    parent = target.parent
    resolved = parent.resolve() if parent.exists() else parent
    if not str(resolved).startswith(str(root.resolve())):
        raise ValueError(f"{relpath} leads out of the rootfs")
    return target


def write_text(root: Path, relpath: str, text: str, mode: int = 0o644) -> None:
    target = _no_escape(root, relpath)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    tmp = target.with_name(f".{target.name}.richc-tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(target)


def symlink(root: Path, relpath: str, points_to: str) -> None:
    target = _no_escape(root, relpath)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    target.symlink_to(points_to)


def remove(root: Path, relpath: str) -> None:
    target = _no_escape(root, relpath)
    if target.is_symlink() or target.is_file():
        target.unlink()


@dataclass(frozen=True)
class Edit:
    """A change and how to make it. ``keep`` backs the old file up first."""

    change: Change
    apply: Callable[[Path], None]
    keep: str | None = None

    def run(self, root: Path) -> None:
        if self.keep:
            backup(root, self.keep)
        self.apply(root)


def write_edit(relpath: str, text: str, reason: str, *, mode: int = 0o644, keep: bool = False,
               action: str = "write") -> Edit:  # fmt: skip
    return Edit(
        Change(f"/{relpath}", action, reason),
        lambda root: write_text(root, relpath, text, mode),
        keep=relpath if keep else None,
    )


def mask_edit(unit: str, reason: str) -> Edit:
    relpath = f"etc/systemd/system/{unit}"
    return Edit(
        Change(f"/{relpath}", "mask", reason),
        lambda root: symlink(root, relpath, "/dev/null"),
        keep=relpath,
    )


def remove_edit(relpath: str, reason: str) -> Edit:
    return Edit(
        Change(f"/{relpath}", "remove", reason), lambda root: remove(root, relpath), relpath
    )
