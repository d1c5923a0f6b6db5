"""The runtime-neutral ContainerSpec, built by a pure function from config and host facts.

Runtimes render only from a spec; nothing here touches the host, so it is unit-tested
without root.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Interface
from pathlib import Path

from isolation.policy import SecurityPolicy
from richc.config import ContainerConfig, Init
from richc.config.limits import Limits

# The signal each init understands as "shut down cleanly", and as "reboot".
# busybox init: SIGUSR2 is poweroff, SIGTERM reboot. SysV init: SIGPWR runs the inittab
# powerfail action (our rendered inittab makes that a shutdown). systemd: SIGRTMIN+3 halts.
HALT_SIGNALS = {
    Init.systemd: "SIGRTMIN+3",
    Init.sysvinit: "SIGPWR",
    Init.busybox: "SIGUSR2",
    Init.dumb_init: "SIGTERM",
}
REBOOT_SIGNALS = {
    Init.systemd: "SIGINT",
    Init.sysvinit: "SIGINT",
    Init.busybox: "SIGTERM",
    Init.dumb_init: "SIGTERM",
}
INIT_ARGV = {
    Init.systemd: ("/sbin/init",),
    Init.sysvinit: ("/sbin/init",),
    Init.busybox: ("/sbin/init",),
    Init.dumb_init: ("/.richc/dumb-init", "--"),
}

# Dropped from every container: they reach outside it (kernel modules, MAC policy, the host
# clock, raw IO ports). The same set LXC's common.conf drops, taken here on purpose.
BASE_CAP_DROP = ("mac_admin", "mac_override", "sys_module", "sys_rawio", "sys_time")

# Device nodes a system container needs: (type, major, minor, access).
ALLOWED_DEVICES = (
    ("c", 1, 3, "rwm"),  # /dev/null
    ("c", 1, 5, "rwm"),  # /dev/zero
    ("c", 1, 7, "rwm"),  # /dev/full
    ("c", 1, 8, "rwm"),  # /dev/random
    ("c", 1, 9, "rwm"),  # /dev/urandom
    ("c", 5, 0, "rwm"),  # /dev/tty
    ("c", 5, 1, "rwm"),  # /dev/console
    ("c", 5, 2, "rwm"),  # /dev/ptmx
    ("c", 136, "*", "rwm"),  # /dev/pts/*
    ("c", 10, 229, "rwm"),  # /dev/fuse
    ("c", 10, 200, "rwm"),  # /dev/net/tun
)


@dataclass(frozen=True)
class HostFacts:
    """What the spec needs to know about the host; the probe fills it in."""

    cgroup_version: int = 1
    apparmor: bool = False
    # AppArmor can confine with richc's own profile: enabled, securityfs mounted and
    # apparmor_parser installed to load it (isolation.apparmor.status). Enabled alone (a
    # kernel without the userspace tools) means containers run explicitly unconfined.
    apparmor_confines: bool = False
    cgroup_namespace: bool = True
    # The cgroup entry of lxc.mount.auto, or None where LXC cannot mount cgroups (pure v2
    # without a cgroup namespace); see richc.probe.decide.choose_cgroup_mount.
    cgroup_mount: str | None = "cgroup:mixed"
    # The IO weight file (blkio.bfq.weight, blkio.weight, io.bfq.weight, io.weight); None:
    # the BFQ file of the cgroup version. richc.hostfacts.read_host finds the host's.
    io_weight_file: str | None = None


@dataclass(frozen=True)
class Mount:
    source: str
    target: str  # absolute path inside the container
    fstype: str = "none"
    options: tuple[str, ...] = ("bind",)
    kind: str = "file"  # "file" or "dir": what to create at the target if missing
    optional: bool = True


@dataclass(frozen=True)
class Nic:
    """A NIC as both runtimes make it: a veth pair, ``host_veth`` on ``bridge``, the other
    end ``eth<index>`` inside with ``mac`` and, when set, ``address`` (A.B.C.D/N) and a
    default route via ``gateway``."""

    index: int
    bridge: str
    mac: str
    host_veth: str
    address: str | None = None
    gateway: str | None = None

    @property
    def ifname(self) -> str:
        return f"eth{self.index}"

    @property
    def broadcast(self) -> str | None:
        # Given to LXC with the address: without it LXC sets a broadcast of 0.0.0.255.
        if self.address is None:
            return None
        return str(IPv4Interface(self.address).network.broadcast_address)


@dataclass(frozen=True)
class Paths:
    rootfs: Path
    log_dir: Path


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    hostname: str
    rootfs: Path
    log_dir: Path
    init: Init
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    halt_signal: str
    reboot_signal: str
    stop_timeout: int
    cgroup_version: int
    # The limits with every device as MAJOR:MINOR; renderers turn them into cgroup files
    # (richc.spec.cgroupfiles) or OCI linux.resources.
    limits: Limits
    io_weight_file: str | None  # the host's IO weight file; None: BFQ's of the version
    mounts: tuple[Mount, ...] = ()
    namespaces: tuple[str, ...] = ("mount", "pid", "uts", "ipc", "network", "cgroup")
    cap_drop: tuple[str, ...] = BASE_CAP_DROP
    devices: tuple[tuple[str, int, int | str, str], ...] = ALLOWED_DEVICES
    rlimits: tuple[tuple[str, int, int], ...] = ()
    apparmor_profile: str | None = None
    cgroup_mount: str | None = "cgroup:mixed"
    network: str = "none"  # none (loopback only), host (the host's namespace), or nics
    nics: tuple[Nic, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()  # the config's own (OCI config.json)
    # What the runtime runs when the container stops for any reason (poststop hooks): a
    # shell command line, as LXC hook values are.
    poststop_callback: str | None = None
    # The user namespace, seccomp filter, masked and read-only paths and AppArmor profile
    # (isolation.policy renders them for either runtime); None: a container made before
    # richc's secure defaults, rendered exactly as then (privileged, no filter, no masks).
    security: SecurityPolicy | None = None
    # Where the LXC runtime writes the seccomp profile's text (beside its config).
    seccomp_file: Path | None = None

    @property
    def privileged(self) -> bool:
        """Container root is host root (``--privileged``, or a container from before)."""
        return self.security is None or self.security.privileged

    @property
    def idmapped_rootfs(self) -> Path:
        """Where runc's config.json points when the rootfs needs an idmapped mount: runc
        1.1 cannot make one, so the runtime binds the tree there, idmapped, at each start."""
        return self.rootfs.with_name(self.rootfs.name + ".idmapped")


def build_spec(
    config: ContainerConfig,
    init: Init,
    paths: Paths,
    host: HostFacts,
    *,
    limits: Limits | None = None,
    mounts: tuple[Mount, ...] = (),
    cap_drop_extra: tuple[str, ...] = (),
    nics: tuple[Nic, ...] = (),
    security: SecurityPolicy | None = None,
) -> ContainerSpec:
    """Turn a validated config plus host facts into the spec both runtimes render.

    *limits* are the config's with devices resolved to MAJOR:MINOR (by the caller, who may
    read the host); by default the config's own, which must then name devices by number.
    """
    if init is Init.auto:
        raise ValueError("the init must be resolved (detected from the rootfs) before the spec")
    argv = INIT_ARGV[init]
    if init is Init.dumb_init:
        argv = (*argv, *(config.command or ("/bin/sh",)))
    env = (("container", "lxc"), *config.env)
    namespaces: tuple[str, ...] = ("mount", "pid", "uts", "ipc", "network")
    if host.cgroup_namespace:
        namespaces = (*namespaces, "cgroup")
    cap_drop = tuple(sorted({*BASE_CAP_DROP, *cap_drop_extra}))
    limits = config.limits if limits is None else limits
    apparmor_profile = "unconfined" if host.apparmor else None
    if security is not None:
        # The policy renders the AppArmor line itself: richc's profile where AppArmor
        # confines processes, else none (lxc.apparmor.profile = unconfined).
        from isolation.apparmor import NESTING_PROFILE_NAME, PROFILE_NAME

        profile = NESTING_PROFILE_NAME if security.nesting else PROFILE_NAME
        security = replace(security, apparmor=profile if host.apparmor_confines else None)
        apparmor_profile = None
    return ContainerSpec(
        name=config.name,
        hostname=config.hostname or config.name,
        rootfs=paths.rootfs,
        log_dir=paths.log_dir,
        init=init,
        argv=argv,
        env=env,
        halt_signal=config.stop_signal or HALT_SIGNALS[init],
        reboot_signal=REBOOT_SIGNALS[init],
        stop_timeout=config.stop_timeout,
        cgroup_version=host.cgroup_version,
        limits=limits,
        io_weight_file=host.io_weight_file,
        mounts=mounts,
        namespaces=namespaces,
        cap_drop=cap_drop,
        rlimits=limits.ulimits,
        apparmor_profile=apparmor_profile,
        cgroup_mount=host.cgroup_mount,
        network=config.net.mode,
        nics=nics,
        annotations=config.annotations,
        security=security,
    )
