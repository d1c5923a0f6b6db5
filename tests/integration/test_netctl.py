"""netctl on the real kernel, without richc containers: a managed bridge with NAT, dnsmasq,
and "containers" that are plain network namespaces (an ``unshare --net sleep``) given NICs
by netctl.veth through their pid. An "outside" namespace sits behind a routed veth of its
own subnet: it stands in for the world, which the tests never reach.

Everything is made with unique names (bridge ``rt<hex>``, table ``richc_test_<hex>``) and
torn down by the fixtures: namespaces' processes by pid, links, the table, dnsmasq by pid.
"""

from __future__ import annotations

import errno
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from netctl import bridge, dnsmasq, ipam, network, nft, sysctl, veth
from netctl.errors import LinkError, NotOurs, SubnetOverlap
from netctl.netlink import doing, iproute, lookup
from netctl.ports import PublishedPort, parse_publish

pytestmark = pytest.mark.integration

BUSYBOX = "/bin/busybox"
HTTP_PORT = 8080
# A TCP server that tells each client the address it sees it connect from.
ECHO_PEER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
while True:
    c, a = s.accept()
    c.sendall(a[0].encode() + b"\\n")
    c.close()
"""


def _require() -> None:
    if os.geteuid() != 0:
        pytest.skip("netctl integration tests need root")
    for tool in ("nft", "dnsmasq", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    pytest.importorskip("pyroute2")


def _poll(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Netns:
    """A process alone in a fresh network namespace, standing in for a container."""

    name: str
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def argv(self, *argv: str) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", "--", *argv]

    def run(self, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def busybox(self, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        return self.run(BUSYBOX, *argv, timeout=timeout)

    def spawn(self, *argv: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv(*argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )


def _own_netns() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def _make_netns(name: str) -> Netns:
    proc = subprocess.Popen(["unshare", "--net", "sleep", "3600"], stdin=subprocess.DEVNULL)
    mine = _own_netns()

    def moved() -> bool:
        try:
            return os.stat(f"/proc/{proc.pid}/ns/net").st_ino != mine
        except FileNotFoundError:
            return False

    _poll(moved, f"{name}'s network namespace")
    return Netns(name, proc)


def _free_subnet(prefix: int, taken: list[IPv4Network]) -> IPv4Network:
    host = bridge.host_networks()
    for _ in range(200):
        net = IPv4Network(
            (f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0", 24)
        ).subnets(new_prefix=prefix)
        candidate = next(net)
        if any(candidate.overlaps(t) for t in taken):
            continue
        try:
            ipam.check_host_overlap(candidate, host)
        except SubnetOverlap:
            continue
        return candidate
    raise AssertionError("no free 10.2xx subnet on this host")


@dataclass
class Lab:
    net: network.NetworkDef
    state: Path
    run: Path
    table: str
    alpha: Netns
    beta: Netns
    outside: Netns
    outside_host: IPv4Address  # the host's own address on the outside link
    outside_addr: IPv4Address  # the outside namespace's address
    outside_link: str
    published: PublishedPort
    dhcp: subprocess.CompletedProcess[str] | None = None


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    _require()
    tag = secrets.token_hex(3)
    subnet = _free_subnet(24, [])
    outside_net = _free_subnet(30, [subnet])
    net = network.NetworkDef.make(f"rt{tag}", subnet, bridge=f"rt{tag}")
    table = f"richc_test_{tag}"
    outside_link = f"rt{tag}o"
    # Each clean-up is registered as soon as what it undoes exists, and ExitStack runs
    # every one of them even when an earlier one fails.
    with ExitStack() as cleanup:
        work = Path(tempfile.mkdtemp(prefix=f"netctl-test-{tag}-"))
        cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        # dnsmasq re-reads its hosts files as an unprivileged user: it must get in.
        os.chmod(work, 0o755)
        cleanup.callback(_restore_forwarding, sysctl.read("ipv4/ip_forward"))
        cleanup.callback(network.down, net, work / "state", work / "run", purge=True)
        cleanup.callback(nft.remove_table, table)
        network.up(net, work / "state", work / "run")
        cleanup.callback(_delete_link, outside_link)
        for index in range(2):
            for name in ("alpha", "beta"):
                cleanup.callback(veth.detach, name, index)
        alpha, beta, outside = (
            cleanup.enter_context(_netns(n)) for n in ("alpha", "beta", "outside")
        )
        # The outside world: a routed /30 from the host, no default route back, so only a
        # masqueraded container connection can get an answer.
        hosts = list(outside_net.hosts())
        with iproute() as ipr:
            ipr.link(
                "add",
                ifname=outside_link,
                kind="veth",
                peer={"ifname": "eth0", "net_ns_pid": outside.pid},
            )
            index = lookup(ipr, outside_link)
            ipr.addr("add", index=index, address=str(hosts[0]), prefixlen=30)
            ipr.link("set", index=index, state="up")
        with iproute(outside.pid) as ns:
            for name in ("lo", "eth0"):
                ns.link("set", index=lookup(ns, name), state="up")
            ns.addr("add", index=lookup(ns, "eth0"), address=str(hosts[1]), prefixlen=30)
        published = PublishedPort.bind(
            parse_publish(f"{random.randint(20000, 29999)}:{HTTP_PORT}"),
            net.gateway + 11,
            net.bridge,
            "beta",
        )
        yield Lab(
            net,
            work / "state",
            work / "run",
            table,
            alpha,
            beta,
            outside,
            hosts[0],
            hosts[1],
            outside_link,
            published,
        )


def _restore_forwarding(was: str) -> None:
    """Put ip_forward back as the session found it, unless another managed network (a
    concurrent richc run on this machine) is up now and needs it."""
    if not bridge.managed_bridges():
        sysctl.write("ipv4/ip_forward", was)


def _delete_link(name: str) -> None:
    with iproute() as ipr:
        index = lookup(ipr, name)
        # A veth whose peer's namespace is dying may vanish any moment now.
        if index is not None:
            with doing(f"delete {name}", tolerate=(errno.ENODEV,)):
                ipr.link("del", index=index)


@contextmanager
def _netns(name: str) -> Iterator[Netns]:
    space = _make_netns(name)
    try:
        yield space
    finally:
        space.proc.kill()
        space.proc.wait()


@pytest.fixture(scope="session")
def wired(lab: Lab) -> Lab:
    """alpha with a static address set by netctl, beta on DHCP with a static lease, both
    named in dnsmasq, beta serving HTTP on a published port, the rules applied."""
    net = lab.net
    macs = {name: ipam.mac_address(name, 0) for name in ("alpha", "beta")}
    alpha_addr, beta_addr = net.gateway + 10, net.gateway + 11
    network.set_hosts(
        net,
        {"alpha": (alpha_addr, macs["alpha"]), "beta": (beta_addr, macs["beta"])},
        lab.state,
        lab.run,
    )
    veth.attach(
        veth.NicSpec(
            "alpha",
            0,
            net.bridge,
            macs["alpha"],
            IPv4Interface(f"{alpha_addr}/{net.subnet.prefixlen}"),
            net.gateway,
        ),
        lab.alpha.pid,
    )
    veth.attach(veth.NicSpec("beta", 0, net.bridge, macs["beta"]), lab.beta.pid)
    network.apply_rules([net], [lab.published], table=lab.table)
    # beta configures itself as a guest would: by DHCP, getting its static lease.
    lab.dhcp = lab.beta.busybox(
        "udhcpc",
        "-i",
        "eth0",
        "-n",
        "-q",
        "-f",
        "-t",
        "5",
        "-T",
        "1",
        "-s",
        str(_udhcpc_script(lab)),
    )
    return lab


# --- the network itself ------------------------------------------------------------------


def test_bridge_is_up_marked_and_addressed(lab: Lab) -> None:
    assert bridge.link_mark(lab.net.bridge) == f"richc:{lab.net.name}"
    with iproute() as ipr:
        index = lookup(ipr, lab.net.bridge)
        addrs = {
            f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
            for a in ipr.get_addr(family=socket.AF_INET, index=index)
        }
    assert addrs == {str(ipam.gateway_interface(lab.net.subnet))}
    assert sysctl.ip_forward()


def test_up_again_is_idempotent(lab: Lab) -> None:
    pid = dnsmasq.status(network.paths(lab.net, lab.state, lab.run)).pid
    assert network.up(lab.net, lab.state, lab.run) == pid


def test_up_recovers_from_a_killed_dnsmasq_and_a_deleted_bridge(lab: Lab) -> None:
    # Runs before any NIC is attached (the `wired` fixture comes later in this file).
    files = network.paths(lab.net, lab.state, lab.run)
    pid = dnsmasq.status(files).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _poll(lambda: _gone(pid), "dnsmasq to die")
    restarted = network.up(lab.net, lab.state, lab.run)
    assert restarted != pid and dnsmasq.status(files).running
    assert bridge.remove_bridge(lab.net.bridge, network=lab.net.name)
    again = network.up(lab.net, lab.state, lab.run)
    # The old dnsmasq was bound to the deleted link: a new one serves the new bridge.
    assert again != restarted and _gone(restarted)
    assert dnsmasq.status(files).pid == again
    assert bridge.link_mark(lab.net.bridge) == f"richc:{lab.net.name}"


def test_overlap_with_the_host_is_refused(lab: Lab) -> None:
    clash = network.NetworkDef.make("rtclash", IPv4Network(f"{lab.outside_host}/30", strict=False))
    with pytest.raises(SubnetOverlap, match=lab.outside_link):
        network.check_new(clash, [lab.net])
    with pytest.raises(SubnetOverlap, match=lab.net.name):
        network.check_new(network.NetworkDef.make("rtother", lab.net.subnet), [lab.net])


def test_a_bridge_richc_did_not_make_is_never_removed(lab: Lab) -> None:
    name = f"rt{secrets.token_hex(3)}x"
    with iproute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
    try:
        with pytest.raises(NotOurs):
            bridge.remove_bridge(name)
        with pytest.raises(NotOurs):
            bridge.ensure_bridge(name, IPv4Interface("10.254.254.1/30"), network="rtsomeone")
        assert bridge.link_mark(name) == ""
    finally:
        with iproute() as ipr:
            ipr.link("del", index=lookup(ipr, name))


# --- containers ----------------------------------------------------------------------------


def _udhcpc_script(lab: Lab) -> Path:
    script = lab.state / "udhcpc.sh"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in bound|renew)\n'
        f'  {BUSYBOX} ip addr add "$ip/$mask" dev "$interface"\n'
        f'  {BUSYBOX} ip route add default via "$router"\n'
        "  ;; esac\n"
    )
    script.chmod(0o755)
    return script


def test_static_nic_inside_the_namespace(wired: Lab) -> None:
    out = wired.alpha.busybox("ip", "-o", "addr", "show", "eth0").stdout
    assert f"inet {wired.net.gateway + 10}/24" in out
    link = wired.alpha.busybox("ip", "-o", "link", "show", "eth0").stdout
    assert ipam.mac_address("alpha", 0) in link
    assert f"default via {wired.net.gateway}" in wired.alpha.busybox("ip", "route").stdout
    assert veth.veth_name("alpha", 0) in bridge.bridge_ports(wired.net.bridge)


def test_dhcp_gives_the_static_lease(wired: Lab) -> None:
    proc = wired.dhcp
    assert proc is not None and proc.returncode == 0, proc
    assert f"lease of {wired.net.gateway + 11} obtained" in proc.stdout + proc.stderr
    assert f"inet {wired.net.gateway + 11}/24" in wired.beta.busybox("ip", "-o", "addr").stdout
    leases = dnsmasq.read_leases(network.paths(wired.net, wired.state, wired.run))
    assert [(lease.mac, lease.address) for lease in leases] == [
        (ipam.mac_address("beta", 0), wired.net.gateway + 11)
    ]


def test_containers_reach_each_other_by_name(wired: Lab) -> None:
    looked = wired.alpha.busybox("nslookup", "beta", str(wired.net.gateway))
    assert str(wired.net.gateway + 11) in looked.stdout, looked.stdout + looked.stderr
    ping = wired.alpha.busybox("ping", "-c", "1", "-W", "2", str(wired.net.gateway + 11))
    assert ping.returncode == 0, ping.stdout
    # A name added later resolves once set_hosts reloaded dnsmasq.
    extra = {
        "alpha": (wired.net.gateway + 10, ipam.mac_address("alpha", 0)),
        "beta": (wired.net.gateway + 11, ipam.mac_address("beta", 0)),
        "gamma": (wired.net.gateway + 12, None),
    }
    assert network.set_hosts(wired.net, extra, wired.state, wired.run)
    _poll(
        lambda: (
            str(wired.net.gateway + 12)
            in wired.beta.busybox("nslookup", "gamma", str(wired.net.gateway)).stdout
        ),
        "gamma to resolve after the reload",
    )


def test_nat_masquerades_to_the_host_address(wired: Lab) -> None:
    server = wired.outside.spawn(sys.executable, "-c", ECHO_PEER, "9000")
    try:
        _poll(
            lambda: _ask_in(wired.alpha, wired.outside_addr, 9000) == str(wired.outside_host),
            "the outside server to see the host's address",
        )
    finally:
        server.kill()
        server.wait()


@pytest.fixture(scope="session")
def served(wired: Lab) -> Iterator[Lab]:
    """beta answers on HTTP_PORT with who connected to it, as it sees them."""
    server = wired.beta.spawn(sys.executable, "-c", ECHO_PEER, str(HTTP_PORT))
    _poll(lambda: _ask_in(wired.beta, "127.0.0.1", HTTP_PORT) != "", "the server in beta")
    yield wired
    server.kill()
    server.wait()


def _ask(host: str | IPv4Address, port: int) -> str:
    """From the host: the peer address the server behind *host*:*port* saw."""
    with socket.create_connection((str(host), port), timeout=5) as conn:
        return conn.makefile().read().strip()


def _ask_in(space: Netns, host: str | IPv4Address, port: int, wait: int = 2) -> str:
    return space.busybox("nc", "-w", str(wait), str(host), str(port)).stdout.strip()


def test_published_port_answers_from_the_host(served: Lab) -> None:
    port = served.published.host_port
    # The host's own address stays the source: beta answers it through its gateway.
    assert _ask(served.outside_host, port) == str(served.outside_host)
    # From loopback: masqueraded to the bridge's address, the only one beta can answer.
    assert _ask("127.0.0.1", port) == str(served.net.gateway)


def test_published_port_answers_from_outside(served: Lab) -> None:
    # A client from outside is seen with its own address: no masquerade on the way in.
    got = _ask_in(served.outside, served.outside_host, served.published.host_port)
    assert got == str(served.outside_addr)


def test_hairpin_from_the_other_container(served: Lab) -> None:
    # alpha and beta share the bridge: without the hairpin masquerade beta would answer
    # alpha directly, from an address alpha never called.
    for host in (served.outside_host, served.net.gateway):
        got = _ask_in(served.alpha, host, served.published.host_port)
        assert got == str(served.net.gateway), host


def test_nat_network_is_closed_to_direct_connections(served: Lab) -> None:
    # Even with a route to the subnet, the outside reaches beta only by the published port.
    beta = served.net.gateway + 11
    route = ("ip", "route", "add", str(served.net.subnet), "via", str(served.outside_host))
    assert served.outside.busybox(*route).returncode == 0
    try:
        # The route works: the bridge's own address answers a ping from outside.
        ping = served.outside.busybox("ping", "-c1", "-W2", str(served.net.gateway))
        assert ping.returncode == 0
        assert _ask_in(served.outside, beta, HTTP_PORT, wait=1) == ""
    finally:
        served.outside.busybox("ip", "route", "del", str(served.net.subnet))


def test_the_table_holds_what_was_rendered(wired: Lab) -> None:
    live = nft.current_table(wired.table)
    assert live is not None
    rules = [o["rule"] for o in live if "rule" in o]
    rendered = [
        o["add"]["rule"]
        for o in nft.render([wired.net.rule_net], [wired.published], wired.table)["nftables"]
        if "rule" in o.get("add", {})
    ]
    assert [(r["chain"], r["expr"]) for r in rules] == [(r["chain"], r["expr"]) for r in rendered]
    assert sysctl.get_link(wired.net.bridge, "route_localnet") == "1"


def test_unpublishing_closes_the_port(served: Lab) -> None:
    port = served.published.host_port
    network.apply_rules([served.net], [], table=served.table)
    try:
        with pytest.raises(OSError):
            _ask(served.outside_host, port)
        assert sysctl.get_link(served.net.bridge, "route_localnet") == "0"
    finally:
        network.apply_rules([served.net], [served.published], table=served.table)
    assert _ask(served.outside_host, port) == str(served.outside_host)


def test_a_second_network_with_ipv6_beside_the_first(lab: Lab) -> None:
    # A routed network with a ULA prefix: its own dnsmasq binds only its own bridge, so two
    # networks' DHCP servers coexist.
    tag = secrets.token_hex(3)
    subnet = _free_subnet(24, [lab.net.subnet])
    other = network.NetworkDef.make(f"rt{tag}", subnet, nat=False, ipv6="auto", seed=tag)
    state, run = lab.state.parent / "other", lab.run
    try:
        pid = network.up(other, state, run)
        assert pid != dnsmasq.status(network.paths(lab.net, lab.state, lab.run)).pid
        with iproute() as ipr:
            index = lookup(ipr, other.bridge)
            addrs = {
                f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                for a in ipr.get_addr(index=index)
                if a["scope"] == 0
            }
        assert addrs == {str(ipam.gateway_interface(subnet)), str(other.gateway6)}
        assert "enable-ra" in network.paths(other, state, run).conf.read_text().splitlines()
    finally:
        network.down(other, state, run, purge=True)
    assert bridge.link_mark(other.bridge) is None
    assert dnsmasq.status(network.paths(other, state, run)).pid is None


def test_a_failed_attach_leaves_no_link(lab: Lab) -> None:
    nic = veth.NicSpec("gone", 0, lab.net.bridge, ipam.mac_address("gone", 0))
    dead = subprocess.Popen(["true"])
    dead.wait()
    with pytest.raises(LinkError, match="does not exist"):
        veth.attach(nic, dead.pid)
    # A process in the host's own namespace: attaching would rewire the host.
    with pytest.raises(LinkError, match="host's network namespace"):
        veth.attach(nic, os.getpid())
    # The container already has an eth0: the pair made for it is deleted again.
    space = _make_netns("clash")
    try:
        with iproute(space.pid) as ns:
            ns.link("add", ifname="eth0", kind="bridge")
        with pytest.raises(LinkError, match="eth0"):
            veth.attach(nic, space.pid)
    finally:
        space.proc.kill()
        space.proc.wait()
    with iproute() as ipr:
        assert lookup(ipr, nic.host_name) is None


def test_attach_again_replaces_what_a_crash_left(lab: Lab) -> None:
    space = _make_netns("again")
    nic = veth.NicSpec(
        "again",
        1,
        lab.net.bridge,
        ipam.mac_address("again", 1),
        IPv4Interface(f"{lab.net.gateway + 20}/24"),
        lab.net.gateway,
    )
    try:
        veth.attach(nic, space.pid)
        assert veth.richc_veths()[nic.host_name] == "again/1"
        # As after a crash between attach and start: the same NIC is made again.
        veth.attach(nic, space.pid)
        ping = space.busybox("ping", "-c1", "-W2", str(lab.net.gateway))
        assert ping.returncode == 0, ping.stdout
        assert space.busybox("ip", "-o", "link", "show", "eth1").returncode == 0
    finally:
        space.proc.kill()
        space.proc.wait()
        veth.detach("again", 1)
    assert nic.host_name not in veth.richc_veths()


def test_containers_cannot_reach_the_host_loopback(served: Lab) -> None:
    # Publishing on the host's loopback sets route_localnet on the bridge, which would let a
    # container send to the host's 127.0.0.1 directly; the guard chain drops that. mallory
    # routes 127.0.0.0/8 to the gateway, the way a hostile container would.
    assert sysctl.get_link(served.net.bridge, "route_localnet") == "1"
    listener = socket.socket()
    # 127.0.0.2: mallory's own lo keeps 127.0.0.1 local whatever its routes say.
    listener.bind(("127.0.0.2", 0))
    listener.listen()
    port = listener.getsockname()[1]
    space = _make_netns("mallory")
    nic = veth.NicSpec(
        "mallory",
        0,
        served.net.bridge,
        ipam.mac_address("mallory", 0),
        IPv4Interface(f"{served.net.gateway + 30}/24"),
        served.net.gateway,
    )
    try:
        veth.attach(nic, space.pid)
        space.run("sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1")
        space.busybox("ip", "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
        added = space.busybox("ip", "route", "add", "127.0.0.0/8", "via", str(served.net.gateway))
        assert added.returncode == 0, added.stderr
        # The same route does reach the host (the gateway answers a ping).
        assert space.busybox("ping", "-c1", "-W2", str(served.net.gateway)).returncode == 0
        listener.settimeout(0.5)
        space.busybox("nc", "-w", "1", "127.0.0.2", str(port), timeout=10)
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
        space.proc.kill()
        space.proc.wait()
        veth.detach("mallory", 0)


def test_release_frees_a_removed_containers_lease(wired: Lab) -> None:
    files = network.paths(wired.net, wired.state, wired.run)
    beta_mac = ipam.mac_address("beta", 0)
    assert beta_mac in [lease.mac for lease in dnsmasq.read_leases(files)]
    before = dnsmasq.status(files).pid
    assert network.release(wired.net, [beta_mac], wired.state, wired.run)
    assert dnsmasq.read_leases(files) == []
    after = dnsmasq.status(files)
    assert after.running and after.pid != before
    assert not network.release(wired.net, [beta_mac], wired.state, wired.run)


# --- teardown (runs last in this file) -------------------------------------------------------


def test_zz_teardown_leaves_nothing(served: Lab) -> None:
    files = network.paths(served.net, served.state, served.run)
    pid = dnsmasq.status(files).pid
    assert pid is not None
    assert veth.detach("alpha", 0) and veth.detach("beta", 0)
    assert not veth.detach("alpha", 0)
    nft.apply([], [], served.table)
    network.down(served.net, served.state, served.run)
    network.down(served.net, served.state, served.run)
    assert nft.current_table(served.table) is None
    assert bridge.link_mark(served.net.bridge) is None
    assert not os.path.exists(f"/proc/{pid}") or dnsmasq.status(files).pid is None
    with iproute() as ipr:
        assert lookup(ipr, veth.veth_name("beta", 0)) is None
    _poll(lambda: _gone(pid), f"dnsmasq {pid} to exit")


def _gone(pid: int) -> bool:
    """Whether *pid* has exited (a zombie waiting for the host's init to reap it counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True
