"""One dnsmasq per managed network: DHCP (dynamic pool plus static leases by MAC) and DNS
for the containers' names, forwarding the rest to the host's resolvers.

Every path comes from the caller (``Paths``). dnsmasq daemonizes and writes its pid file;
netctl signals it only after checking that /proc/PID/cmdline is dnsmasq run with this
network's conf file, so a stale pid file whose pid was reused never gets another process
signalled."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import Path

from netctl.errors import NetError, ToolFailed, ToolMissing

_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_HINT = "apt-get install dnsmasq-base"
LEASE_TIME = "12h"


@dataclass(frozen=True)
class Paths:
    """Where one network's dnsmasq keeps its files: conf, static leases and names
    (``dhcp-hosts``), DNS names (``hosts``) and leases under *state_dir*; the pid file in
    *run_dir* (richc: ROOT/var/lib/richc/networks/NAME and ROOT/run/richc/networks)."""

    conf: Path
    dhcp_hosts: Path
    hosts: Path
    leases: Path
    pidfile: Path

    @classmethod
    def under(cls, state_dir: Path, run_dir: Path, network: str) -> Paths:
        return cls(
            conf=state_dir / "dnsmasq.conf",
            dhcp_hosts=state_dir / "dhcp-hosts",
            hosts=state_dir / "hosts",
            leases=state_dir / "leases",
            pidfile=run_dir / f"{network}.dnsmasq.pid",
        )


@dataclass(frozen=True)
class HostEntry:
    """A container's name on the network: with a MAC it gets a DHCP host line (a static
    lease when ``address`` is set, else just its name); with an address, a DNS record."""

    name: str
    address: IPv4Address | None = None
    mac: str | None = None


@dataclass(frozen=True)
class Lease:
    expires: int
    mac: str
    address: IPv4Address
    hostname: str


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    reason: str = ""


def render_conf(
    *,
    bridge: str,
    subnet: IPv4Network,
    gateway: IPv4Address,
    dhcp_range: tuple[IPv4Address, IPv4Address],
    paths: Paths,
    servers: Sequence[str] = (),
    domain: str | None = None,
    user: str = "nobody",
    subnet6: IPv6Network | None = None,
) -> str:
    """dnsmasq's conf file for one network, pure."""
    lines = [
        "# Made by richc (netctl); rewritten whenever the network is brought up.",
        f"interface={bridge}",
        # Only the bridge's own address: other dnsmasqs (one per network, lxc-net's,
        # libvirt's) and the host's resolver keep theirs.
        "bind-interfaces",
        "except-interface=lo",
        # The host's /etc/resolv.conf may name 127.0.0.53 or change under us; the
        # upstreams are given here instead, and /etc/hosts is the host's, not the network's.
        "no-resolv",
        "no-hosts",
        "strict-order",
        *(f"server={s}" for s in servers),
        f"user={user}",
        "group=nogroup",
        f"pid-file={paths.pidfile}",
        f"dhcp-leasefile={paths.leases}",
        f"dhcp-hostsfile={paths.dhcp_hosts}",
        f"addn-hosts={paths.hosts}",
        f"dhcp-range={dhcp_range[0]},{dhcp_range[1]},{subnet.netmask},{LEASE_TIME}",
        f"dhcp-option=option:router,{gateway}",
        f"dhcp-option=option:dns-server,{gateway}",
        # The only DHCP server on this bridge: answer clients that ask for a lease
        # another server gave, instead of making them time out first.
        "dhcp-authoritative",
        # Names from the leases (dhcp-hosts names and client-sent hostnames) resolve too.
        "dhcp-fqdn" if domain else "",
        f"domain={domain}" if domain else "",
        f"local=/{domain}/" if domain else "",
        "expand-hosts" if domain else "",
    ]
    if subnet6 is not None:
        lines += [
            "enable-ra",
            f"dhcp-range={subnet6.network_address},ra-stateless,{subnet6.prefixlen},{LEASE_TIME}",
        ]
    return "\n".join(line for line in lines if line) + "\n"


def render_dhcp_hosts(entries: Iterable[HostEntry]) -> str:
    """dhcp-hostsfile lines ``MAC,ADDRESS,NAME`` (``MAC,NAME`` without an address)."""
    lines = []
    for e in sorted(entries, key=lambda e: e.name):
        if e.mac:
            lines.append(",".join([e.mac, *([str(e.address)] if e.address else []), e.name]))
    return "".join(f"{line}\n" for line in lines)


def render_hosts(entries: Iterable[HostEntry]) -> str:
    """addn-hosts lines ``ADDRESS NAME`` for the entries with a known address."""
    return "".join(
        f"{e.address} {e.name}\n" for e in sorted(entries, key=lambda e: e.name) if e.address
    )


def host_resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The nameservers of the host's resolv.conf (empty when it is missing). dnsmasq runs
    in the host's namespace, so even a loopback resolver (127.0.0.53) is reachable."""
    try:
        text = resolv_conf.read_text()
    except OSError:
        return []
    servers = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1].split("%")[0])
    return servers


def parse_leases(text: str) -> list[Lease]:
    """The IPv4 leases of a dnsmasq lease file (``EXPIRY MAC ADDRESS NAME CLIENTID``)."""
    leases = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or ":" in fields[2] or fields[0] == "duid":
            continue
        try:
            address = IPv4Address(fields[2])
        except ValueError:
            continue
        leases.append(
            Lease(int(fields[0]), fields[1], address, "" if fields[3] == "*" else fields[3])
        )
    return leases


def read_leases(paths: Paths) -> list[Lease]:
    try:
        return parse_leases(paths.leases.read_text())
    except FileNotFoundError:
        return []


def without_leases(text: str, macs: Iterable[str]) -> str:
    """The lease file *text* without the lines of *macs* (lower-case colon form)."""
    drop = {m.lower() for m in macs}
    kept = [
        line for line in text.splitlines() if len(line.split()) < 2 or line.split()[1] not in drop
    ]
    return "".join(f"{line}\n" for line in kept)


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write *text* to *path* atomically (a rename), unless it holds it already; True when
    written. Mode 0644: dnsmasq re-reads its hosts files on SIGHUP after dropping root."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def dnsmasq_path() -> str | None:
    return shutil.which("dnsmasq", path=_PATH)


def default_user() -> str:
    """Debian's dnsmasq package makes a ``dnsmasq`` user; dnsmasq-base alone does not."""
    try:
        pwd.getpwnam("dnsmasq")
    except KeyError:
        return "nobody"
    return "dnsmasq"


def _read_pid(paths: Paths) -> int | None:
    try:
        return int(paths.pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _is_ours(pid: int, paths: Paths) -> bool:
    """Whether *pid* is a live dnsmasq running *paths*' conf file (not a zombie)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] == "Z":
        return False
    return (
        bool(argv)
        and os.path.basename(argv[0].decode(errors="replace")) == "dnsmasq"
        and f"--conf-file={paths.conf}".encode() in argv
    )


def status(paths: Paths) -> Status:
    pid = _read_pid(paths)
    if pid is None:
        return Status(False, None, "no pid file")
    if not _is_ours(pid, paths):
        return Status(False, None, f"pid {pid} from the pid file is not this network's dnsmasq")
    return Status(True, pid)


def _check_readable(paths: Paths, user: str) -> None:
    # dnsmasq re-reads the hosts files on SIGHUP as *user*: every directory above them must
    # let others in, or names added later silently never resolve.
    if user == "root":
        return
    for directory in [paths.dhcp_hosts.parent, *paths.dhcp_hosts.parent.parents]:
        if not os.stat(directory).st_mode & 0o001:
            raise NetError(
                f"dnsmasq runs as {user} and cannot enter {directory} to re-read its hosts",
                hint=f"chmod o+x {directory}, or keep the network's files elsewhere",
            )


def start(paths: Paths, *, user: str | None = None) -> int:
    """Start the network's dnsmasq from ``paths.conf`` unless it runs already; its pid.
    The conf file must name the same user (``render_conf(user=...)``)."""
    current = status(paths)
    if current.running and current.pid is not None:
        return current.pid
    exe = dnsmasq_path()
    if exe is None:
        raise ToolMissing("dnsmasq is not installed: managed networks need it", hint=_HINT)
    _check_readable(paths, user or default_user())
    paths.pidfile.parent.mkdir(parents=True, exist_ok=True)
    paths.pidfile.unlink(missing_ok=True)
    for path in (paths.dhcp_hosts, paths.hosts):
        if not path.exists():
            write_if_changed(path, "")
    argv = [exe, f"--conf-file={paths.conf}"]
    # dnsmasq reports start-up failures (address in use, bad conf) through its exit status
    # before it detaches, so a zero status means it serves.
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={"PATH": _PATH, "LC_ALL": "C"},
        check=False,
    )
    if proc.returncode != 0:
        hint = None
        if "Address already in use" in proc.stderr:
            hint = "another DHCP/DNS server listens on all addresses (ss -lunp 'sport = 67')"
        raise ToolFailed(argv, proc.returncode, proc.stderr, hint=hint)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = status(paths)
        if state.running and state.pid is not None:
            return state.pid
        time.sleep(0.01)
    raise NetError(f"dnsmasq started but {paths.pidfile} never named it")


def drop_leases(paths: Paths, macs: Iterable[str], *, user: str | None = None) -> bool:
    """Forget the leases of *macs* (a removed container's NICs) so that their addresses are
    free again at once; True when there were any. dnsmasq keeps its leases in memory and
    rewrites the file from there, so a running one is stopped around the edit and started
    again."""
    try:
        text = paths.leases.read_text()
    except FileNotFoundError:
        return False
    kept = without_leases(text, macs)
    if kept == text:
        return False
    was_running = stop(paths)
    write_if_changed(paths.leases, kept)
    if was_running:
        start(paths, user=user)
    return True


def reload(paths: Paths) -> bool:
    """Make a running dnsmasq re-read its hosts files (SIGHUP); False when it is not running."""
    state = status(paths)
    if not state.running or state.pid is None:
        return False
    os.kill(state.pid, signal.SIGHUP)
    return True


def _wait_gone(pid: int, paths: Paths, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_ours(pid, paths):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def stop(paths: Paths, timeout: float = 5.0) -> bool:
    """Stop the network's dnsmasq (SIGTERM, then SIGKILL after *timeout*) and remove its pid
    file; False when it was not running."""
    state = status(paths)
    if not state.running or state.pid is None:
        paths.pidfile.unlink(missing_ok=True)
        return False
    pid = state.pid
    os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, paths, timeout):
        os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, paths, timeout):
            raise NetError(f"dnsmasq {pid} did not die from SIGKILL within {timeout} s")
    paths.pidfile.unlink(missing_ok=True)
    return True
