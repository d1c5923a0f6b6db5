"""What richc will use on a probed host, and why.

Every function here is pure: a :class:`HostProbe` in, choices out. :func:`features` is the
small summary the spec builder and runtimes consume; :func:`decisions` is the same reasoning
spelled out, one line per check, for ``richc doctor``.
"""

from __future__ import annotations

from dataclasses import dataclass

from richc.probe.host import CgroupFacts, CgroupLayout, HostProbe, QuotaFacts, probe_host
from richc.probe.kernel import KernelVersion, has, requirement
from richc.probe.tools import probe_tools

# /proc/self/ns names -> the names the spec and the OCI runtime-spec use, in clone order.
SPEC_NAMESPACES = (
    ("mnt", "mount"),
    ("pid", "pid"),
    ("uts", "uts"),
    ("ipc", "ipc"),
    ("net", "network"),
    ("cgroup", "cgroup"),
)
_REQUIRED_NAMESPACES = ("mount", "pid", "uts", "ipc", "network")
# The controllers behind richc's limits: --memory, --cpus, --cpuset, --pids.
LIMIT_CONTROLLERS = ("memory", "cpu", "cpuset", "pids")
QUOTA_BACKENDS = ("btrfs", "project", "loop")


@dataclass(frozen=True)
class Decision:
    """One line of ``richc doctor``: a check, what was found, what richc uses, and why."""

    check: str
    value: str
    use: str
    why: str


@dataclass(frozen=True)
class RuntimeChoice:
    runtime: str | None  # "lxc", "runc", or None when nothing can run containers
    binary: str | None  # for runc: the runc or crun executable
    why: str


@dataclass(frozen=True)
class QuotaBackend:
    name: str
    possible: bool
    why: str


@dataclass(frozen=True)
class QuotaSelection:
    """What ``create --disk`` would choose, from its own live checks on the directory that
    holds the containers (a mount of its own there is what static facts of the store miss)."""

    path: str
    backend: str | None  # None: --disk is refused
    tried: tuple[QuotaBackend, ...]  # in the order create tries them, up to the chosen one


@dataclass(frozen=True)
class Features:
    """The host facts the spec builder and the runtimes need, as plain values."""

    kernel: KernelVersion | None
    cgroup_layout: CgroupLayout
    cgroup_version: int  # 1 or 2: the hierarchy that carries the limit controllers; 0: none
    cgroup_controllers: tuple[str, ...]  # limit controllers usable in that version
    use_cgroup_ns: bool
    namespaces: tuple[str, ...]  # to create, in spec/OCI names
    lxc_cgroup_mount: str | None  # the cgroup entry of lxc.mount.auto, or None for none
    has_open_tree: bool
    has_pidfd: bool
    has_overlay: bool
    has_fuse: bool
    has_user_ns: bool
    has_seccomp_filter: bool
    apparmor: bool
    systemd_pid1: bool
    lxcfs_mountpoint: str | None  # a serving lxcfs to bind views from
    quota_backend: str | None
    runtime: str | None
    runtime_binary: str | None
    cpu_count: int

    def cgroup_key_prefix(self) -> str:
        """The LXC config key family for limits: ``lxc.cgroup`` (v1) or ``lxc.cgroup2``."""
        return "lxc.cgroup2" if self.cgroup_version == 2 else "lxc.cgroup"


def limit_cgroup_version(cgroups: CgroupFacts) -> int:
    """Where limits go: the version holding memory (v1 on hybrid hosts, as LXC does)."""
    version = cgroups.version_of("memory")
    if version is not None:
        return version
    if cgroups.layout is CgroupLayout.v2:
        return 2
    return 1 if cgroups.v1_controllers else 0


def spec_namespaces(probe: HostProbe) -> tuple[str, ...]:
    available = set(probe.namespaces.available)
    return tuple(spec for proc, spec in SPEC_NAMESPACES if proc in available)


def choose_cgroup_mount(cgroups: CgroupFacts, cgroup_ns: bool) -> tuple[str | None, str]:
    """The cgroup entry of ``lxc.mount.auto``, from LXC 5's cgfsng mount rules."""
    if cgroups.layout is CgroupLayout.none:
        return None, "no cgroup hierarchy is mounted on the host"
    if cgroups.layout is CgroupLayout.v2:
        if cgroup_ns:
            return (
                "cgroup:mixed",
                "pure cgroup2: LXC mounts cgroup2 in the container's cgroup namespace",
            )
        return None, "LXC cannot mount cgroup2 without a cgroup namespace (kernel < 4.6)"
    if cgroup_ns:
        # Without :force LXC leaves v1 mounts to an init that keeps CAP_SYS_ADMIN: busybox
        # and SysV init mount none, and systemd joins cpu,cpuacct even where the host has
        # them apart, which leaves both unmounted and breaks nested LXC.
        return "cgroup:mixed:force", (
            "cgroup namespace: LXC mounts every v1 hierarchy as the host has it, the "
            "container's own subtree writable, whatever the init would mount"
        )
    return "cgroup:mixed", (
        "no cgroup namespace (kernel < 4.6): LXC bind-mounts the container's own cgroups "
        "writable under read-only parents; /proc/self/cgroup shows host paths"
    )


def quota_backends(quota: QuotaFacts, kernel: KernelVersion | None) -> tuple[QuotaBackend, ...]:
    """Each backend in richc's order of preference, with why it can or cannot serve the path."""
    fstype = quota.fstype or "unknown"
    if fstype == "btrfs" and has(kernel, "btrfs_qgroups"):
        btrfs = QuotaBackend("btrfs", True, "a qgroup-limited subvolume per container")
    elif fstype == "btrfs":
        btrfs = QuotaBackend("btrfs", False, "btrfs qgroups need kernel 3.6")
    else:
        btrfs = QuotaBackend("btrfs", False, f"{fstype}, not btrfs")

    if fstype in ("ext4", "xfs") and quota.project_option:
        project = QuotaBackend("project", True, f"{fstype} mounted with {quota.project_option}")
    elif fstype in ("ext4", "xfs"):
        option = "prjquota" if fstype == "ext4" else "pquota"
        reasons = [f"{fstype} mounted without {option}"]
        if fstype == "ext4" and quota.qfmt_v2 is False:
            reasons.append("kernel lacks ext4 quota files (CONFIG_QFMT_V2)")
        if fstype == "xfs" and quota.xfs_quota is False:
            reasons.append("kernel lacks XFS quota (CONFIG_XFS_QUOTA)")
        if fstype == "ext4" and not has(kernel, "ext4_project_quota"):
            reasons.append("ext4 project quota needs kernel 4.5")
        project = QuotaBackend("project", False, ", ".join(reasons))
    else:
        project = QuotaBackend("project", False, f"{fstype} has no project quota")

    if quota.loop_devices:
        device = "/dev/loop-control" if quota.loop_control else "/dev/loop0"
        loop = QuotaBackend("loop", True, f"{device}: an ext4 image per container")
    else:
        why = "no /dev/loop-control or /dev/loop0"
        if quota.loop_module:
            why += " (loop is a module: `modprobe loop` creates them)"
        loop = QuotaBackend("loop", False, why)
    return btrfs, project, loop


def choose_quota(quota: QuotaFacts, kernel: KernelVersion | None) -> QuotaBackend | None:
    return next((b for b in quota_backends(quota, kernel) if b.possible), None)


def choose_runtime(probe: HostProbe) -> RuntimeChoice:
    """``--runtime auto``: lxc when its bindings load, else runc, else crun."""
    tools = probe.runtimes
    if tools is None:
        return RuntimeChoice(None, None, "the runtimes were not checked")
    if tools.lxc.loaded:
        version = f" (liblxc {tools.lxc.version})" if tools.lxc.version else ""
        return RuntimeChoice("lxc", None, f"the python lxc bindings load{version}")
    library = "liblxc loads" if tools.lxc.liblxc else "liblxc.so.1 not found"
    skipped = [f"lxc bindings do not load ({tools.lxc.error}; {library})"]
    kernel = probe.kernel.version
    # An unknown version is given the benefit of the doubt here: refusing would leave no runtime.
    runc_kernel = kernel is None or has(kernel, "runc")
    too_old = f"kernel {kernel} is older than {requirement('runc').since}, runc's minimum"
    if tools.runc.path is None:
        skipped.append("runc not on PATH")
    elif not runc_kernel:
        skipped.append(f"runc: {too_old}")
    else:
        return RuntimeChoice("runc", tools.runc.path, "; ".join([*skipped, "runc found"]))
    if tools.crun.path is None:
        skipped.append("crun not on PATH")
    elif probe.cgroups.layout is CgroupLayout.hybrid:
        skipped.append("crun refuses hybrid cgroups")
    elif not runc_kernel:
        skipped.append(f"crun: {too_old}")
    else:
        return RuntimeChoice("runc", tools.crun.path, "; ".join([*skipped, "crun found"]))
    return RuntimeChoice(None, None, "; ".join(skipped))


def features(probe: HostProbe) -> Features:
    kernel = probe.kernel.version
    version = limit_cgroup_version(probe.cgroups)
    cgroup_ns = "cgroup" in probe.namespaces.available
    runtime = choose_runtime(probe)
    quota = choose_quota(probe.quota, kernel)
    fs = probe.filesystems
    return Features(
        kernel=kernel,
        cgroup_layout=probe.cgroups.layout,
        cgroup_version=version,
        cgroup_controllers=tuple(
            c for c in LIMIT_CONTROLLERS if probe.cgroups.version_of(c) == version
        ),
        use_cgroup_ns=cgroup_ns,
        namespaces=spec_namespaces(probe),
        lxc_cgroup_mount=choose_cgroup_mount(probe.cgroups, cgroup_ns)[0],
        has_open_tree=has(kernel, "open_tree"),
        has_pidfd=has(kernel, "pidfd"),
        has_overlay=fs.overlay,
        has_fuse=fs.fuse and fs.dev_fuse,
        has_user_ns=probe.user_namespaces.usable,
        has_seccomp_filter=probe.seccomp.filter,
        apparmor=probe.apparmor.enabled,
        systemd_pid1=probe.systemd.pid1,
        lxcfs_mountpoint=probe.lxcfs.serving[0] if probe.lxcfs.serving else None,
        quota_backend=quota.name if quota else None,
        runtime=runtime.runtime,
        runtime_binary=runtime.binary,
        cpu_count=probe.cpu_count or 1,
    )


def host_features(root: str = "/", store_path: str = "/var/lib/richc") -> Features:
    """The kernel-side features of the host at *root*, without the live runtime checks.

    About 2 ms: cheap enough for every start. ``runtime`` is None here; ask
    :func:`choose_runtime` on a full probe for ``--runtime auto``.
    """
    return features(probe_host(root, store_path=store_path, live=False))


def auto_runtime(root: str = "/") -> RuntimeChoice:
    """``--runtime auto`` for ``richc create``: the same choice ``richc doctor`` shows.

    Skips the ``--version`` subprocesses, which only the report needs.
    """
    return choose_runtime(probe_host(root, tools=probe_tools(version=lambda path: None)))
