"""Copying a live host's tree with rsync over ssh, first in full and then incrementally
(``richc migrate sync``), keeping numeric owners, hard links, ACLs, xattrs and holes.

The kernel's own filesystems (/proc, /sys, /dev, /run, /tmp), removable media (/mnt,
/media) and the remote's network and FUSE mounts are left out: their directories are
copied, their contents not.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from vmimport.errors import CopyIncomplete, InvalidSource, SourceUnreachable, ToolFailed
from vmimport.progress import rsync_progress
from vmimport.tools import Progress, run

DEFAULT_PORT = 22
# Directories whose contents never belong in the copy (the directories themselves do: the
# container's init expects to find them).
ALWAYS_EXCLUDED = ("/proc", "/sys", "/dev", "/run", "/tmp", "/mnt", "/media", "/lost+found")
# Remote mounts left out wherever they are, besides the ones above.
SKIPPED_FSTYPES = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "sshfs", "davfs", "glusterfs",
        "ceph", "ocfs2", "gfs2", "lustre", "afs", "9p", "autofs",
        "proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "ramfs", "cgroup", "cgroup2",
        "securityfs", "debugfs", "tracefs", "configfs", "pstore", "efivarfs", "bpf",
        "mqueue", "hugetlbfs", "fusectl", "binfmt_misc", "rpc_pipefs", "nfsd", "overlay",
        "squashfs",
    }
)  # fmt: skip

# rsync(1) EXIT VALUES.
RSYNC_VANISHED = 24  # files vanished while copying: normal on a live host
RSYNC_SSH_FAILED = 255
RSYNC_PROTOCOL = 12  # the stream broke: often ssh could not log in
RSYNC_PARTIAL = 23  # some files were not transferred

_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$")
# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


@dataclass(frozen=True)
class SshSource:
    """``ssh://USER@HOST[:PORT][/PATH]``; PATH is the tree to copy, / by default."""

    user: str
    host: str
    port: int = DEFAULT_PORT
    path: str = "/"

    @property
    def destination(self) -> str:
        """USER@HOST as ssh and rsync take it (an IPv6 address in brackets for rsync)."""
        return f"{self.user}@{self.host}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return f"ssh://{self.user}@{host}{port}{self.path}"


def parse_source(url: str) -> SshSource:
    """Parse and check ``ssh://USER@HOST[:PORT][/PATH]``; InvalidSource names the field."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced [ in the host
        raise InvalidSource("host", f"{url}: {exc}") from None
    if parts.scheme != "ssh":
        raise InvalidSource(
            "scheme",
            f"{url}: the scheme must be ssh:// (got {parts.scheme or 'none'})",
            hint="write ssh://USER@HOST[:PORT]",
        )
    if parts.query or parts.fragment:
        raise InvalidSource("query", f"{url}: no ?query or #fragment is allowed")
    if parts.password is not None:
        raise InvalidSource(
            "password",
            f"{url}: a password in the URL is not accepted",
            hint="log in with a key (identity file); ssh runs in batch mode",
        )
    user = unquote(parts.username or "")
    if not user:
        raise InvalidSource("user", f"{url}: the user is missing", hint="write ssh://root@HOST")
    if not _USER.match(user):
        raise InvalidSource("user", f"{url}: {user!r} is not a valid user name")
    host = _host(url, parts)
    port = _port(url, parts)
    path = unquote(parts.path) or "/"
    if not path.startswith("/") or "\x00" in path or ".." in PurePosixPath(path).parts:
        raise InvalidSource("path", f"{url}: the path must be absolute, without '..'")
    return SshSource(user, host, port, str(PurePosixPath(path)))


def _host(url: str, parts: SplitResult) -> str:
    host = parts.hostname or ""
    if not host:
        raise InvalidSource("host", f"{url}: the host is missing")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if "[" in parts.netloc:
        raise InvalidSource("host", f"{url}: {host!r} in brackets is not an IPv6 address")
    if not _HOSTNAME.match(host):
        raise InvalidSource("host", f"{url}: {host!r} is not a valid host name")
    return host


def _port(url: str, parts: SplitResult) -> int:
    try:
        port = parts.port
    except ValueError:
        raw = parts.netloc.rsplit(":", 1)[-1]
        raise InvalidSource("port", f"{url}: port {raw!r} is not a number in 1-65535") from None
    if port is None:
        if parts.netloc.endswith(":"):
            raise InvalidSource("port", f"{url}: the port after ':' is empty")
        return DEFAULT_PORT
    if not 0 < port < 65536:
        raise InvalidSource("port", f"{url}: port {port} is not in 1-65535")
    return port


@dataclass(frozen=True)
class SshOptions:
    """How to log in. Without *known_hosts*, the user's own known_hosts file is used and
    a host never seen before is accepted and remembered (accept-new); with it, only keys
    in that file are accepted."""

    identity_file: Path | None = None
    known_hosts: Path | None = None
    connect_timeout: int = 15
    sudo: bool = False  # run the remote rsync as root through sudo -n (for a non-root user)
    remote_rsync: str = "rsync"  # the remote command, e.g. "ionice -c3 nice rsync" on a busy host
    extra: tuple[str, ...] = field(default=())  # more ssh -o options, "Key=value"


def ssh_argv(source: SshSource, options: SshOptions) -> list[str]:
    """ssh and its options, without the destination: rsync's -e takes this."""
    argv = ["ssh", "-p", str(source.port), "-o", "BatchMode=yes"]
    argv += ["-o", f"ConnectTimeout={options.connect_timeout}", "-o", "ServerAliveInterval=15"]
    if options.known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={options.known_hosts}"]
        argv += ["-o", "StrictHostKeyChecking=yes"]
    else:
        argv += ["-o", "StrictHostKeyChecking=accept-new"]
    if options.identity_file is not None:
        argv += ["-i", str(options.identity_file), "-o", "IdentitiesOnly=yes"]
    for option in options.extra:
        argv += ["-o", option]
    return argv


@dataclass(frozen=True)
class RemoteMount:
    target: str
    fstype: str


def _unescape_findmnt(text: str) -> str:
    # findmnt -r writes unsafe characters (space, tab, backslash) as \xNN.
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def parse_findmnt(text: str) -> list[RemoteMount]:
    """``findmnt -rn -o TARGET,FSTYPE`` output."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2:
            found.append(RemoteMount(_unescape_findmnt(fields[0]), fields[1]))
    return found


def skipped_mounts(mounts: list[RemoteMount]) -> list[RemoteMount]:
    """The remote mounts whose contents are left out: network, FUSE and kernel ones."""
    return [
        m
        for m in mounts
        if m.target != "/" and (m.fstype in SKIPPED_FSTYPES or m.fstype.startswith("fuse"))
    ]


def parse_proc_mounts(text: str) -> list[RemoteMount]:
    """/proc/self/mounts: source, target, type, ...; blanks in paths as octal escapes."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            target = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
            found.append(RemoteMount(target, fields[2]))
    return found


def remote_mounts(source: SshSource, options: SshOptions) -> list[RemoteMount]:
    """The live host's mounts, read over ssh (from /proc where findmnt is missing: an
    old or minimal host)."""
    ssh = [*ssh_argv(source, options), source.destination]
    try:
        return parse_findmnt(_ssh_run([*ssh, "findmnt -rn -o TARGET,FSTYPE"], source))
    except ToolFailed as exc:
        if exc.returncode != 127:
            raise
    return parse_proc_mounts(_ssh_run([*ssh, "cat /proc/self/mounts"], source))


def _ssh_run(argv: list[str], source: SshSource) -> str:
    try:
        return run(argv)
    except ToolFailed as exc:
        if exc.returncode == RSYNC_SSH_FAILED:
            raise unreachable(source, exc) from None
        raise


def unreachable(source: SshSource, exc: ToolFailed) -> SourceUnreachable:
    lines = exc.stderr.strip().splitlines()
    return SourceUnreachable(
        f"cannot log in to {source}: {lines[-1] if lines else 'ssh failed'}",
        hint=f"check that `ssh -p {source.port} {source.destination} true` works without "
        "a password prompt (a key in the agent or --identity-file)",
    )


def _pattern(path: str) -> str:
    # rsync treats *, ? and [ as wildcards in filter rules; a backslash escapes them.
    return re.sub(r"([*?\[\\])", r"\\\1", path)


def exclude_patterns(source_path: str, skipped: list[RemoteMount]) -> list[str]:
    """rsync --exclude patterns, anchored at the transfer root (*source_path*): the
    contents of the kernel's directories and of every skipped mount below the source."""
    root = PurePosixPath(source_path)
    patterns = []
    if root == PurePosixPath("/"):
        patterns += [f"{_pattern(d)}/*" for d in ALWAYS_EXCLUDED]
    for mount in skipped:
        target = PurePosixPath(mount.target)
        if target == root or root not in target.parents:
            continue
        relative = "/" + str(target.relative_to(root))
        pattern = f"{_pattern(relative)}/*"
        if pattern not in patterns:
            patterns.append(pattern)
    return patterns


def rsync_argv(
    source: SshSource,
    dest: str | Path,
    options: SshOptions,
    excludes: list[str],
) -> list[str]:
    """The rsync command line that mirrors *source* into *dest*."""
    argv = [
        "rsync",
        "-aHAXS",  # archive, hard links, ACLs, xattrs, sparse
        "--numeric-ids",  # the guest's uids, not the names' meaning on this host
        "--delete",  # an incremental sync removes what the host removed
        "--info=progress2",
        "--no-human-readable",
        "-e",
        shlex.join(ssh_argv(source, options)),
    ]
    if options.sudo or options.remote_rsync != "rsync":
        argv.append(f"--rsync-path={'sudo -n ' if options.sudo else ''}{options.remote_rsync}")
    argv += [f"--exclude={pattern}" for pattern in excludes]
    remote_path = source.path.rstrip("/") + "/"
    host = f"[{source.host}]" if ":" in source.host else source.host
    argv += [f"{source.user}@{host}:{remote_path}", str(dest).rstrip("/") + "/"]
    return argv


@dataclass(frozen=True)
class SyncResult:
    source: SshSource
    skipped: tuple[RemoteMount, ...]  # remote mounts whose contents were left out
    vanished: bool  # some files went away while they were being copied (rsync exit 24)

    def report(self) -> dict[str, Any]:
        """Plain data for the migration report (JSON-ready)."""
        return {
            "source": str(self.source),
            "skipped_mounts": [{"target": m.target, "fstype": m.fstype} for m in self.skipped],
            "vanished_files": self.vanished,
        }


def sync(
    source: SshSource | str,
    dest: str | Path,
    options: SshOptions | None = None,
    progress: Progress | None = None,
    keep: tuple[str, ...] = (),
) -> SyncResult:
    """Copy (the first time) or bring up to date (every later time) *dest* from the live
    host. *dest* is created if missing. Raise SourceUnreachable, InvalidSource or
    ToolFailed (rsync's own failure, with its last message)."""
    source = parse_source(source) if isinstance(source, str) else source
    options = options or SshOptions()
    skipped = skipped_mounts(remote_mounts(source, options))
    Path(dest).mkdir(parents=True, exist_ok=True)
    # *keep*: paths of dest the copy leaves alone (not copied over, never deleted), such as
    # richc's own /.richc with the originals of the files its fix-ups replaced.
    excludes = exclude_patterns(source.path, skipped) + [f"/{p.strip('/')}" for p in keep]
    argv = rsync_argv(source, dest, options, excludes)
    what = f"copying {source}"

    def on_output(line: str) -> None:
        step = rsync_progress(line)
        if step is not None and progress is not None:
            progress(step.done, step.total, what)

    vanished = False
    try:
        run(argv, on_output=on_output if progress else None)
    except ToolFailed as exc:
        if exc.returncode == RSYNC_VANISHED:
            vanished = True
        elif exc.returncode == RSYNC_SSH_FAILED or (
            exc.returncode == RSYNC_PROTOCOL and "ssh" in exc.stderr
        ):
            raise unreachable(source, exc) from None
        elif exc.returncode == RSYNC_PARTIAL and "Permission denied" in exc.stderr:
            denied = [line for line in exc.stderr.splitlines() if "Permission denied" in line]
            more = f" (and {len(denied) - 1} more)" if len(denied) > 1 else ""
            raise CopyIncomplete(
                f"some files on {source} could not be read: {denied[0].strip()}{more}",
                hint="log in as root, or pass sudo=True to run the remote rsync through sudo -n",
            ) from None
        else:
            raise
    return SyncResult(source, tuple(skipped), vanished)
