"""Parse /proc/PID/mountinfo (proc(5)), the kernel's own list of a process's mounts.

mountinfo rather than /proc/mounts because it carries the mount point relative to the
reading process's root and the mount's root inside its filesystem, which is what tells a
bind of ``HOME/proc/meminfo`` apart from the lxcfs home itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LXCFS_FSTYPE = "fuse.lxcfs"

# The kernel escapes space, tab, newline and backslash in paths as octal (show_path()).
_ESCAPE = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class MountEntry:
    mount_id: int
    parent_id: int
    root: str  # the path inside the filesystem that is mounted ("/proc/meminfo" for a bind)
    mount_point: str  # relative to the root of the process whose mountinfo this is
    fstype: str
    source: str

    @property
    def is_lxcfs(self) -> bool:
        return self.fstype == LXCFS_FSTYPE


def parse_line(line: str) -> MountEntry:
    """One mountinfo line; optional fields end at the lone ``-`` separator."""
    fields = line.split()
    try:
        sep = fields.index("-", 6)
        return MountEntry(
            mount_id=int(fields[0]),
            parent_id=int(fields[1]),
            root=unescape(fields[3]),
            mount_point=unescape(fields[4]),
            fstype=fields[sep + 1],
            source=unescape(fields[sep + 2]),
        )
    except (ValueError, IndexError) as exc:
        raise ValueError(f"malformed mountinfo line: {line!r}") from exc


def parse(text: str) -> tuple[MountEntry, ...]:
    return tuple(parse_line(line) for line in text.splitlines() if line.strip())


def read(pid: int | str = "self", *, proc: Path = Path("/proc")) -> tuple[MountEntry, ...]:
    return parse((proc / str(pid) / "mountinfo").read_text())


def lxcfs_at(entries: Iterable[MountEntry], mount_point: str) -> tuple[MountEntry, ...]:
    """The lxcfs mounts stacked on *mount_point*, bottom first (the kernel lists in that order)."""
    return tuple(e for e in entries if e.is_lxcfs and e.mount_point == mount_point)


def top_at(entries: Iterable[MountEntry], mount_point: str) -> MountEntry | None:
    """The mount a path lookup of *mount_point* reaches: the last one listed there."""
    found = None
    for entry in entries:
        if entry.mount_point == mount_point:
            found = entry
    return found
