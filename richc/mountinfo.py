"""mountinfo(5): the one parser of /proc/PID/mountinfo in richc, and the questions asked of it.

(lxcfs_integration and quota stand alone and keep their own small readers.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mount:
    """One line of /proc/PID/mountinfo (proc(5))."""

    mount_id: int
    parent_id: int
    root: str
    mountpoint: str
    options: tuple[str, ...]  # per-mount: rw, nosuid, relatime, ...
    fstype: str
    source: str
    super_options: tuple[str, ...]  # per-superblock: controllers, prjquota, ...


def unescape(field: str) -> str:
    r"""mountinfo escapes space, tab, newline and backslash as \040, \011, \012, \134."""
    if "\\" not in field:
        return field
    out: list[str] = []
    i = 0
    while i < len(field):
        chunk = field[i + 1 : i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse(text: str) -> tuple[Mount, ...]:
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
            mounts.append(
                Mount(
                    mount_id=int(fields[0]),
                    parent_id=int(fields[1]),
                    root=unescape(fields[3]),
                    mountpoint=unescape(fields[4]),
                    options=tuple(fields[5].split(",")),
                    fstype=fields[sep + 1],
                    source=unescape(fields[sep + 2]) if len(fields) > sep + 2 else "",
                    super_options=tuple(fields[sep + 3].split(","))
                    if len(fields) > sep + 3
                    else (),
                )
            )
        except (ValueError, IndexError):
            continue  # a truncated or foreign line; the rest still tell the story
    return tuple(mounts)


def mount_of(mounts: tuple[Mount, ...], path: str) -> Mount | None:
    """The mount that holds *path*: the last-mounted one with the longest matching prefix."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.mountpoint.rstrip("/") or "/"
        inside = point == "/" or path == point or path.startswith(point + "/")
        if inside and (best is None or len(point) >= len(best.mountpoint.rstrip("/") or "/")):
            best = mount
    return best


def read(path: str | Path = "/proc/self/mountinfo") -> tuple[Mount, ...]:
    with open(path) as handle:
        return parse(handle.read())


def mounts_under(path: Path) -> list[str]:
    """Mount points strictly below *path*, in mount order (unmount them in reverse)."""
    prefix = str(path.resolve()) + "/"
    return [m.mountpoint for m in read() if m.mountpoint.startswith(prefix)]


def is_mounted(path: Path) -> bool:
    """Whether something is mounted exactly at *path*."""
    target = str(path.resolve())
    return any(m.mountpoint == target for m in read())
