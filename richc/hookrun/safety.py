"""Refuse hooks that someone other than root could have changed.

A hook runs as root with the container's rootfs in reach, so a file that another user can
write, or that sits in a directory another user can write (and so swap the file), would
hand them root. The check follows symlinks and looks at every directory up to ``/``. A
world-writable directory with the sticky bit (``/tmp``) is accepted: there only the owner
can rename or remove an entry, and the entry itself is checked.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from richc.errors import RichcError


class UnsafeHook(RichcError):
    """A hook file (or one of its directories) fails the ownership/permission check."""


def check(path: Path, *, euid: int | None = None) -> None:
    """Raise UnsafeHook naming the offending path and the fix, or return if *path* is safe."""
    uid = os.geteuid() if euid is None else euid
    try:
        real = Path(os.path.realpath(path))
        info = os.stat(real)
    except OSError as exc:
        raise UnsafeHook(
            f"hook {path} cannot be checked: {exc.strerror}", hint="check the path exists"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeHook(f"hook {path} is not a regular file", hint="point it at an executable")
    _check_entry(real, info, uid, path)
    # The symlink's own directory matters too: whoever can write it can retarget the link.
    directories = {*real.parents}
    if real != Path(os.path.abspath(path)):
        directories |= {*Path(os.path.abspath(path)).parents}
    for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        try:
            dinfo = os.stat(directory)
        except OSError as exc:
            raise UnsafeHook(f"hook directory {directory}: {exc.strerror}") from None
        _check_entry(directory, dinfo, uid, path)


def _check_entry(entry: Path, info: os.stat_result, uid: int, hook: Path) -> None:
    is_dir = stat.S_ISDIR(info.st_mode)
    what = f"its directory {entry}" if is_dir else (str(entry) if entry != hook else "it")
    if info.st_mode & stat.S_IWOTH and not (is_dir and info.st_mode & stat.S_ISVTX):
        raise UnsafeHook(
            f"refusing hook {hook}: {what} is world-writable",
            hint=f"fix it with `chmod o-w {entry}`",
        )
    if uid == 0 and info.st_uid != 0:
        raise UnsafeHook(
            f"refusing hook {hook}: {what} is owned by uid {info.st_uid}, not root",
            hint=f"fix it with `chown root {entry}` (richc runs hooks as root)",
        )
