"""User-namespace id ranges: which host ids a container's 0..65535 become.

richc keeps one 65536-id range per container, the same start for users and groups, and
writes it to ``/etc/subuid`` and ``/etc/subgid`` as an entry of the user ``richc``. The
entries are a reservation other tools respect (podman, lxc-usernsexec, useradd's automatic
subordinate ids all skip ranges already listed), not something the kernel reads: root needs
no entry to write a uid_map.

Allocation is pure (:func:`allocate`): it takes the parsed files and the ranges the caller
records as in use, and returns a start that overlaps neither, above every other user's
entries. :func:`reserve` does the whole read-allocate-write under a lock; :func:`release`
removes a container's entries again. Writes are atomic (a temporary file renamed over the
old one) and idempotent.

One exception to "root needs no entry": where shadow's setuid ``newuidmap`` and
``newgidmap`` are installed (Debian's ``uidmap``, which lxc recommends), LXC writes every
map through them, even as root, and they allow only ranges /etc/subuid grants to the
calling user. So where :func:`shadow_tools_used`, :func:`reserve` also writes a ``root``
entry for the range (a *grant*) into the host's own files; without it the container fails
to start ("newuidmap: uid range [0-65536) -> [...) not allowed"). A root entry another
tool made (LXD's) never covers richc's range, which lies above every foreign entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from isolation.errors import IdRangeExhausted, StrPath, SubIdFileInvalid

OWNER = "richc"
GRANTEE = "root"  # who runs the runtimes, and so newuidmap
COUNT = 65536
# Below this, ids belong to the host's own users (Debian's useradd starts subordinate ids
# at 100000, SUB_UID_MIN in /etc/login.defs).
FIRST = 100000
# uid_t is 32 bits and (uid_t)-1 means "no id", so the last usable id is 2^32 - 2.
LIMIT = 2**32 - 1

SUBUID = "etc/subuid"
SUBGID = "etc/subgid"
LOCK = "etc/.richc-subid.lock"


@dataclass(frozen=True, order=True)
class IdRange:
    """``count`` consecutive host ids from ``start``."""

    start: int
    count: int = COUNT

    @property
    def end(self) -> int:
        """One past the last id."""
        return self.start + self.count

    def overlaps(self, other: IdRange) -> bool:
        return self.start < other.end and other.start < self.end

    def __contains__(self, host_id: object) -> bool:
        return isinstance(host_id, int) and self.start <= host_id < self.end


@dataclass(frozen=True)
class SubIdEntry:
    """One line of /etc/subuid or /etc/subgid: ``owner:start:count``."""

    owner: str
    start: int
    count: int

    @property
    def range(self) -> IdRange:
        return IdRange(self.start, self.count)

    def line(self) -> str:
        return f"{self.owner}:{self.start}:{self.count}"


@dataclass(frozen=True)
class IdMap:
    """A container's user namespace: its ids 0..count-1 are host ids from the starts."""

    host_uid_start: int
    host_gid_start: int
    count: int = COUNT

    @classmethod
    def of(cls, start: int, count: int = COUNT) -> IdMap:
        """The usual map, the same host start for users and groups."""
        return cls(start, start, count)

    @property
    def uid_range(self) -> IdRange:
        return IdRange(self.host_uid_start, self.count)

    @property
    def gid_range(self) -> IdRange:
        return IdRange(self.host_gid_start, self.count)

    def host_uid(self, uid: int) -> int:
        """The host uid of the container's *uid*."""
        if not 0 <= uid < self.count:
            raise ValueError(f"uid {uid} is outside the container's 0..{self.count - 1}")
        return self.host_uid_start + uid

    def host_gid(self, gid: int) -> int:
        if not 0 <= gid < self.count:
            raise ValueError(f"gid {gid} is outside the container's 0..{self.count - 1}")
        return self.host_gid_start + gid

    def uid_map(self) -> str:
        """The text for /proc/PID/uid_map."""
        return f"0 {self.host_uid_start} {self.count}\n"

    def gid_map(self) -> str:
        return f"0 {self.host_gid_start} {self.count}\n"


# --- renderers -----------------------------------------------------------------------------


def lxc_idmap_keys(idmap: IdMap) -> list[tuple[str, str]]:
    """The ``lxc.idmap`` keys for *idmap*, in the order LXC wants them (users first)."""
    return [
        ("lxc.idmap", f"u 0 {idmap.host_uid_start} {idmap.count}"),
        ("lxc.idmap", f"g 0 {idmap.host_gid_start} {idmap.count}"),
    ]


def oci_id_mappings(idmap: IdMap) -> dict[str, list[dict[str, int]]]:
    """``linux.uidMappings`` and ``linux.gidMappings`` of a config.json, to merge into
    ``linux``; the ``user`` namespace must be listed in ``linux.namespaces`` as well."""
    return {
        "uidMappings": [{"containerID": 0, "hostID": idmap.host_uid_start, "size": idmap.count}],
        "gidMappings": [{"containerID": 0, "hostID": idmap.host_gid_start, "size": idmap.count}],
    }


# --- the files -----------------------------------------------------------------------------


def parse_subid(text: str, path: StrPath | None = None) -> list[SubIdEntry]:
    """The entries of a subuid/subgid text; blank lines and ``#`` comments are skipped, as
    shadow-utils skips them."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
            raise SubIdFileInvalid(
                f"line {number} is not OWNER:START:COUNT: {raw!r}",
                path,
                hint="fix or remove the line; richc will not rewrite a file it cannot read",
            )
        entries.append(SubIdEntry(parts[0], int(parts[1]), int(parts[2])))
    return entries


def allocate(
    entries: Iterable[SubIdEntry],
    in_use: Iterable[IdRange | int],
    *,
    owner: str = OWNER,
    count: int = COUNT,
    first: int = FIRST,
    limit: int = LIMIT,
) -> int:
    """The start of a free *count*-id range, given every entry of subuid and subgid.

    Free means: above every entry of another owner (so a range added later by useradd or an
    admin, which shadow-utils appends after the highest one, cannot land on ours), and
    overlapping neither *in_use* (the caller's record, as ranges or starts) nor an entry of
    *owner* (a range written by a create the caller has no record of is not handed out
    again until :func:`release` removes it). Starts are multiples of *count* above that
    floor, so ranges line up and the lowest free one is found first. *limit* is one past
    the highest id usable here (:func:`namespace_limit`).
    """
    entries = list(entries)
    floor = max([first, *(e.start + e.count for e in entries if e.owner != owner)])
    taken = sorted(
        {IdRange(r, count) if isinstance(r, int) else r for r in in_use}
        | {e.range for e in entries if e.owner == owner}
    )
    start = -(-floor // count) * count  # the first multiple of count at or above the floor
    for used in taken:
        if used.end <= start:
            continue
        if IdRange(start, count).overlaps(used):
            start = -(-used.end // count) * count
    if start + count > limit and limit < LIMIT:
        raise IdRangeExhausted(
            f"this user namespace maps ids only up to {limit - 1}: no range of {count} ids "
            f"from {start} fits (richc runs inside an unprivileged container)",
            hint="create this container with --privileged, or run richc in a container "
            "created with --privileged --nesting",
        )
    if start + count > limit:
        raise IdRangeExhausted(
            f"no free range of {count} ids is left below 2^32 (the next would start at {start})",
            hint="delete containers you no longer need, or remove stale richc entries",
        )
    return start


def namespace_limit(proc: StrPath = "/proc/self") -> int:
    """One past the highest id this process's user namespace maps, the lower of uids and
    gids: in the initial namespace 2^32 - 1; inside an unprivileged container 65536, so no
    range above :data:`FIRST` can be written to a child's uid_map."""
    limits = []
    for name in ("uid_map", "gid_map"):
        try:
            text = (Path(proc) / name).read_text()
        except FileNotFoundError:  # a kernel without user namespaces: all ids are the host's
            return LIMIT
        ends = [
            int(f[0]) + int(f[2])
            for f in (line.split() for line in text.splitlines())
            if len(f) == 3
        ]
        limits.append(min(max(ends, default=0), LIMIT))
    return min(limits)


def stale_entries(entries: Iterable[SubIdEntry], in_use: Iterable[IdRange | int]) -> list[int]:
    """Starts of *owner* entries no container records: left by an interrupted create."""
    recorded = {r if isinstance(r, int) else r.start for r in in_use}
    return sorted({e.start for e in entries if e.owner == OWNER and e.start not in recorded})


def with_entry(text: str, entry: SubIdEntry) -> str:
    """*text* with *entry* appended, unless an equal line is there already."""
    lines = text.splitlines()
    if entry.line() in (line.strip() for line in lines):
        return text
    return "".join(f"{line}\n" for line in [*lines, entry.line()])


def without_entry(text: str, owner: str, start: int, count: int | None = None) -> str:
    """*text* without the lines of *owner* that start at *start* (and span *count*, when
    given); other lines untouched."""
    kept = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if (
            len(parts) == 3
            and parts[0] == owner
            and parts[1] == str(start)
            and (count is None or parts[2] == str(count))
        ):
            continue
        kept.append(line)
    return "".join(f"{line}\n" for line in kept)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def write_atomically(path: Path, text: str) -> None:
    """Replace *path* by *text* in one rename, keeping its mode and owner (0644 root for
    new files): a reader sees the old file or the new one, never half of either."""
    try:
        st = path.stat()
        mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
    except FileNotFoundError:
        mode, uid, gid = 0o644, os.getuid(), os.getgid()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fchown(f.fileno(), uid, gid)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


@contextmanager
def locked(root: StrPath = "/") -> Iterator[None]:
    """Hold richc's lock on the subordinate id files: two creates must not both pick the
    same free range between reading and writing."""
    lock = Path(root) / LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_entries(root: StrPath = "/") -> list[SubIdEntry]:
    """Every entry of ROOT/etc/subuid and ROOT/etc/subgid (missing files are empty)."""
    found = []
    for name in (SUBUID, SUBGID):
        path = Path(root) / name
        found += parse_subid(_read(path), path)
    return found


def add_entries(idmap: IdMap, root: StrPath = "/", *, owner: str = OWNER) -> None:
    """Write *idmap*'s ranges as *owner* entries of subuid and subgid (idempotent)."""
    for name, start in ((SUBUID, idmap.host_uid_start), (SUBGID, idmap.host_gid_start)):
        path = Path(root) / name
        old = _read(path)
        parse_subid(old, path)  # refuse to rewrite a file we cannot read
        new = with_entry(old, SubIdEntry(owner, start, idmap.count))
        if new != old:
            write_atomically(path, new)


def release(
    idmap: IdMap, root: StrPath = "/", *, owner: str = OWNER, grant_root: StrPath | None = None
) -> None:
    """Remove *idmap*'s *owner* entries from subuid and subgid, and with *grant_root* the
    root grant :func:`reserve` wrote there (only a line of exactly this range: a broader
    root entry someone else made stays); absent ones are fine."""
    with locked(root):
        _remove(idmap, root, owner, idmap.count)
    if grant_root is not None:
        with locked(grant_root):
            _remove(idmap, grant_root, GRANTEE, idmap.count)


def _remove(idmap: IdMap, root: StrPath, owner: str, count: int | None = None) -> None:
    for name, start in ((SUBUID, idmap.host_uid_start), (SUBGID, idmap.host_gid_start)):
        path = Path(root) / name
        old = _read(path)
        new = without_entry(old, owner, start, count)
        if new != old:
            write_atomically(path, new)


def shadow_tools_used(path: str | None = None) -> bool:
    """Whether LXC will write id maps through ``newuidmap``/``newgidmap``: both are on
    *path* (default $PATH) and privileged (setuid, or a file capability), LXC's own test."""
    for tool in ("newuidmap", "newgidmap"):
        found = shutil.which(tool, path=path)
        if found is None:
            return False
        try:
            if not os.stat(found).st_mode & stat.S_ISUID and not os.getxattr(
                found, "security.capability"
            ):
                return False
        except OSError:  # no such xattr: neither setuid nor a capability
            return False
    return True


def reserve(
    root: StrPath = "/",
    in_use: Iterable[IdRange | int] = (),
    *,
    count: int = COUNT,
    grant_root: StrPath | None = None,
) -> IdMap:
    """Pick a free range, write it to subuid and subgid, and return it as an IdMap. The
    caller records it in the container's state; until then the file entries keep other
    creates off it. With *grant_root* (the host's ``/`` where :func:`shadow_tools_used`),
    the range is also granted to root in the files there, and allocation keeps clear of
    every entry there as well, so containers of different richc roots never share ids."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(locked(root))
        entries = read_entries(root)
        separate = grant_root is not None and Path(grant_root).resolve() != Path(root).resolve()
        if grant_root is not None and separate:
            stack.enter_context(locked(grant_root))  # always after ROOT's: no lock cycle
            entries += read_entries(grant_root)
        start = allocate(entries, in_use, count=count, limit=namespace_limit())
        idmap = IdMap.of(start, count)
        add_entries(idmap, root)
        if grant_root is not None:
            # Always a grant of its own: the range lies above every root entry there.
            add_entries(idmap, grant_root, owner=GRANTEE)
    return idmap
