"""What the host's kernel offers, read from files below a root path.

Each ``read_*`` function turns a few files into one frozen fact; :func:`probe_host` reads
them all. Nothing here decides what richc does with a fact: that is :mod:`.decide`.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from richc.mountinfo import Mount, mount_of
from richc.mountinfo import parse as parse_mountinfo
from richc.probe.kernel import KernelVersion, has, release_from_proc_version
from richc.probe.tools import RuntimeTools, probe_tools
from richc.probe.tree import HostTree, kconfig_flag, parse_kconfig

# Names in /proc/self/ns that are not namespaces of their own.
_NS_ALIASES = ("pid_for_children", "time_for_children")

# Namespaces older than /proc/PID/ns itself (3.0; mnt and pid appeared there only in 3.8):
# on such kernels their presence follows from the version.
_OLD_NAMESPACES = (
    ("mnt", "mount_namespace"),
    ("uts", "uts_ipc_namespaces"),
    ("ipc", "uts_ipc_namespaces"),
    ("pid", "pid_namespace"),
    ("net", "net_namespace"),
)

# v1 hierarchy names that are not controllers in mount options.
_V1_NON_CONTROLLERS = frozenset(
    {"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "nsdelegate"}
)
# ext4 and xfs spell an active project quota differently in mountinfo.
PROJECT_QUOTA_OPTIONS = frozenset({"prjquota", "pquota", "pqnoenforce", "prjjquota"})


@dataclass(frozen=True)
class KernelFacts:
    release: str | None
    version: KernelVersion | None
    config_source: str | None  # where the kernel config was found, if anywhere
    config: Mapping[str, str] | None  # CONFIG_* without the prefix; None if not found


@dataclass(frozen=True)
class NamespaceFacts:
    available: tuple[str, ...]  # /proc/self/ns names: cgroup ipc mnt net pid time user uts
    listed: bool  # /proc/self/ns exists; if not, the list follows from the version


class CgroupLayout(enum.StrEnum):
    v1 = "v1"
    v2 = "v2"
    hybrid = "hybrid"  # v1 controllers plus a cgroup2 mount (often empty) beside them
    none = "none"


@dataclass(frozen=True)
class CgroupHierarchy:
    mountpoint: str
    version: int
    controllers: tuple[str, ...]  # v1: from the mount options, with "name=..." for named ones


@dataclass(frozen=True)
class CgroupFacts:
    layout: CgroupLayout
    hierarchies: tuple[CgroupHierarchy, ...]
    v1_controllers: tuple[str, ...]  # mounted and enabled v1 controllers
    v2_controllers: tuple[str, ...]  # cgroup.controllers of the cgroup2 mount
    v2_mountpoint: str | None
    kernel_controllers: tuple[str, ...]  # /proc/cgroups rows with enabled = 1
    disabled_controllers: tuple[str, ...]  # /proc/cgroups rows with enabled = 0

    def version_of(self, controller: str) -> int | None:
        """The cgroup version whose hierarchy carries *controller*, v1 first (as LXC does)."""
        if controller in self.v1_controllers:
            return 1
        if controller in self.v2_controllers:
            return 2
        return None


@dataclass(frozen=True)
class FilesystemFacts:
    registered: tuple[str, ...]  # /proc/filesystems
    overlay: bool  # registered, or built as a module that mount(2) loads on demand
    overlay_loaded: bool
    fuse: bool
    dev_fuse: bool


@dataclass(frozen=True)
class LxcfsFacts:
    mountpoints: tuple[str, ...]  # fuse.lxcfs mounts in mountinfo
    dead: tuple[str, ...]  # those whose daemon is gone: ENOTCONN ("Transport endpoint ...")

    @property
    def serving(self) -> tuple[str, ...]:
        return tuple(m for m in self.mountpoints if m not in self.dead)


@dataclass(frozen=True)
class QuotaFacts:
    path: str  # the store path the backends are judged for
    mountpoint: str | None
    fstype: str | None
    project_option: str | None  # the active prjquota/pquota option of that mount
    kernel_quota: bool  # /proc/sys/fs/quota: CONFIG_QUOTA
    qfmt_v2: bool | None  # ext4 quota files (CONFIG_QFMT_V2); None if the config is unknown
    xfs_quota: bool | None  # CONFIG_XFS_QUOTA
    btrfs: bool  # btrfs is a known filesystem
    loop_control: bool
    loop_devices: bool
    loop_module: bool | None  # CONFIG_BLK_DEV_LOOP=m: devices appear after `modprobe loop`


@dataclass(frozen=True)
class SeccompFacts:
    status_field: bool  # /proc/self/status has "Seccomp:" (3.8+, CONFIG_SECCOMP)
    mode: int | None  # 0 none, 1 strict, 2 filter: the probing process's own mode
    filter: bool  # SECCOMP_MODE_FILTER is available
    actions: tuple[str, ...]  # /proc/sys/kernel/seccomp/actions_avail (4.14+)


@dataclass(frozen=True)
class AppArmorFacts:
    enabled: bool


@dataclass(frozen=True)
class UserNamespaceFacts:
    present: bool
    max_namespaces: int | None  # user.max_user_namespaces (4.9+; RHEL 7 backport)
    unprivileged_clone: int | None  # kernel.unprivileged_userns_clone (Debian/Ubuntu patch)

    @property
    def usable(self) -> bool:
        return self.present and self.max_namespaces != 0


@dataclass(frozen=True)
class SystemdFacts:
    pid1_comm: str | None
    booted: bool  # /run/systemd/system exists: sd_booted(3)

    @property
    def pid1(self) -> bool:
        return self.booted or self.pid1_comm == "systemd"


@dataclass(frozen=True)
class HostProbe:
    root: str
    kernel: KernelFacts
    namespaces: NamespaceFacts
    cgroups: CgroupFacts
    filesystems: FilesystemFacts
    lxcfs: LxcfsFacts
    quota: QuotaFacts
    seccomp: SeccompFacts
    apparmor: AppArmorFacts
    user_namespaces: UserNamespaceFacts
    systemd: SystemdFacts
    cpu_count: int | None
    runtimes: RuntimeTools | None  # None when the live checks were skipped (live=False)


def read_kernel(tree: HostTree) -> KernelFacts:
    release = tree.read_line("proc/sys/kernel/osrelease")
    if not release:
        proc_version = tree.read("proc/version")
        release = release_from_proc_version(proc_version) if proc_version else None
    version = KernelVersion.parse(release) if release else None
    config_text, source = tree.read_gzip("proc/config.gz"), "/proc/config.gz"
    if config_text is None and release:
        source = f"/boot/config-{release}"
        config_text = tree.read(source)
    if config_text is None:
        return KernelFacts(release, version, None, None)
    return KernelFacts(release, version, source, parse_kconfig(config_text))


def read_namespaces(tree: HostTree, kernel: KernelFacts) -> NamespaceFacts:
    entries = tree.entries("proc/self/ns")
    names = {name for name in entries or () if name not in _NS_ALIASES}
    # Before 3.8, /proc/PID/ns is missing or lists only some of the namespaces the kernel has.
    if entries is None or not has(kernel.version, "user_namespace"):
        names.update(name for name, feature in _OLD_NAMESPACES if has(kernel.version, feature))
    return NamespaceFacts(tuple(sorted(names)), entries is not None)


def _proc_cgroups(tree: HostTree) -> dict[str, bool]:
    """/proc/cgroups: subsystem name -> enabled (hierarchy 0 means unbound or on cgroup2)."""
    controllers: dict[str, bool] = {}
    for line in (tree.read("proc/cgroups") or "").splitlines():
        fields = line.split()
        if len(fields) >= 4 and not line.startswith("#"):
            controllers[fields[0]] = fields[3] == "1"
    return controllers


def read_cgroups(tree: HostTree, mounts: tuple[Mount, ...]) -> CgroupFacts:
    kernel = _proc_cgroups(tree)
    hierarchies: list[CgroupHierarchy] = []
    v2_mount: str | None = None
    v2_controllers: tuple[str, ...] = ()
    for mount in mounts:
        if mount.fstype == "cgroup":
            names = tuple(
                opt
                for opt in mount.super_options
                if opt.startswith("name=")
                or (opt in kernel if kernel else opt not in _V1_NON_CONTROLLERS and "=" not in opt)
            )
            hierarchies.append(CgroupHierarchy(mount.mountpoint, 1, names))
        elif mount.fstype == "cgroup2":
            controllers = tuple(
                (tree.read_line(f"{mount.mountpoint}/cgroup.controllers") or "").split()
            )
            hierarchies.append(CgroupHierarchy(mount.mountpoint, 2, controllers))
            if v2_mount is None or mount.mountpoint == "/sys/fs/cgroup":
                v2_mount, v2_controllers = mount.mountpoint, controllers
    v1 = sorted(
        {
            c
            for h in hierarchies
            if h.version == 1
            for c in h.controllers
            if not c.startswith("name=")
        }
        - {name for name, enabled in kernel.items() if not enabled}
    )
    if v1 and v2_mount is not None:
        layout = CgroupLayout.hybrid
    elif v1:
        layout = CgroupLayout.v1
    elif v2_mount is not None:
        layout = CgroupLayout.v2
    else:
        layout = CgroupLayout.none
    return CgroupFacts(
        layout=layout,
        hierarchies=tuple(hierarchies),
        v1_controllers=tuple(v1),
        v2_controllers=tuple(sorted(v2_controllers)),
        v2_mountpoint=v2_mount,
        kernel_controllers=tuple(sorted(n for n, enabled in kernel.items() if enabled)),
        disabled_controllers=tuple(sorted(n for n, enabled in kernel.items() if not enabled)),
    )


def read_filesystems(tree: HostTree, kernel: KernelFacts) -> FilesystemFacts:
    registered = tuple(
        line.split()[-1]
        for line in (tree.read("proc/filesystems") or "").splitlines()
        if line.split()
    )
    # Old Ubuntu kernels shipped the out-of-tree "overlayfs" before 3.18's "overlay".
    loaded = "overlay" in registered or "overlayfs" in registered
    overlay = loaded or bool(kconfig_flag(kernel.config, "OVERLAY_FS"))
    fuse = "fuse" in registered or bool(kconfig_flag(kernel.config, "FUSE_FS"))
    return FilesystemFacts(
        registered=registered,
        overlay=overlay,
        overlay_loaded=loaded,
        fuse=fuse,
        dev_fuse=tree.exists("dev/fuse"),
    )


def read_quota(
    tree: HostTree, kernel: KernelFacts, mounts: tuple[Mount, ...], fs: FilesystemFacts, path: str
) -> QuotaFacts:
    mount = mount_of(mounts, path)
    project = None
    if mount is not None:
        project = next((opt for opt in mount.super_options if opt in PROJECT_QUOTA_OPTIONS), None)
        project = project or next((o for o in mount.options if o in PROJECT_QUOTA_OPTIONS), None)
    return QuotaFacts(
        path=path,
        mountpoint=mount.mountpoint if mount else None,
        fstype=mount.fstype if mount else None,
        project_option=project,
        kernel_quota=tree.is_dir("proc/sys/fs/quota"),
        qfmt_v2=kconfig_flag(kernel.config, "QFMT_V2"),
        xfs_quota=kconfig_flag(kernel.config, "XFS_QUOTA"),
        btrfs="btrfs" in fs.registered or bool(kconfig_flag(kernel.config, "BTRFS_FS")),
        loop_control=tree.exists("dev/loop-control"),
        loop_devices=tree.exists("dev/loop0") or tree.exists("dev/loop-control"),
        loop_module=kernel.config.get("BLK_DEV_LOOP") == "m" if kernel.config else None,
    )


def read_seccomp(tree: HostTree, kernel: KernelFacts) -> SeccompFacts:
    mode: int | None = None
    field = False
    for line in (tree.read("proc/self/status") or "").splitlines():
        if line.startswith("Seccomp:"):
            field = True
            value = line.split(":", 1)[1].strip()
            mode = int(value) if value.isdigit() else None
    actions = tuple((tree.read_line("proc/sys/kernel/seccomp/actions_avail") or "").split())
    configured = kconfig_flag(kernel.config, "SECCOMP_FILTER")
    seccomp_filter = bool(actions) or (
        field and has(kernel.version, "seccomp_filter") and configured is not False
    )
    return SeccompFacts(field, mode, seccomp_filter, actions)


def read_user_namespaces(tree: HostTree, namespaces: NamespaceFacts) -> UserNamespaceFacts:
    return UserNamespaceFacts(
        present="user" in namespaces.available,
        max_namespaces=tree.read_int("proc/sys/user/max_user_namespaces"),
        unprivileged_clone=tree.read_int("proc/sys/kernel/unprivileged_userns_clone"),
    )


def read_lxcfs(tree: HostTree, mounts: tuple[Mount, ...]) -> LxcfsFacts:
    points = tuple(m.mountpoint for m in mounts if m.fstype == "fuse.lxcfs")
    dead = []
    for point in points:
        # A FUSE mount whose daemon died stays in mountinfo; only a request to it tells.
        # stat() may be answered from the attribute cache, so read a byte. In a recorded
        # tree the path is simply absent (ENOENT), which proves nothing.
        try:
            with open(tree.path(f"{point}/proc/uptime"), "rb") as view:
                view.read(1)
        except OSError as exc:
            if exc.errno == errno.ENOTCONN:
                dead.append(point)
    return LxcfsFacts(points, tuple(dead))


def read_cpu_count(tree: HostTree) -> int | None:
    """CPUs online, from the list format of /sys/devices/system/cpu/online ("0-3,6")."""
    text = tree.read_line("sys/devices/system/cpu/online")
    if not text:
        return None
    count = 0
    try:
        for part in text.split(","):
            first, _, last = part.partition("-")
            count += int(last) - int(first) + 1 if last else 1
    except ValueError:
        return None
    return count


def probe_host(
    root: str | Path = "/",
    *,
    store_path: str = "/var/lib/richc",
    tools: RuntimeTools | None = None,
    live: bool = True,
) -> HostProbe:
    """Read every fact from the tree at *root*; *store_path* is where quotas would apply.

    *tools* are the live checks (:func:`probe_tools`); pass them in to simulate a host
    without the lxc bindings or without runc. ``live=False`` skips them (no ``import lxc``,
    no subprocess) for callers that only need kernel facts: then no runtime is chosen.
    """
    tree = HostTree(Path(root))
    kernel = read_kernel(tree)
    mounts = parse_mountinfo(tree.read("proc/self/mountinfo") or "")
    namespaces = read_namespaces(tree, kernel)
    filesystems = read_filesystems(tree, kernel)
    return HostProbe(
        root=str(root),
        kernel=kernel,
        namespaces=namespaces,
        cgroups=read_cgroups(tree, mounts),
        filesystems=filesystems,
        lxcfs=read_lxcfs(tree, mounts),
        quota=read_quota(tree, kernel, mounts, filesystems, store_path),
        seccomp=read_seccomp(tree, kernel),
        apparmor=AppArmorFacts(
            (tree.read_line("sys/module/apparmor/parameters/enabled") or "").upper().startswith("Y")
        ),
        user_namespaces=read_user_namespaces(tree, namespaces),
        systemd=SystemdFacts(tree.read_line("proc/1/comm"), tree.is_dir("run/systemd/system")),
        cpu_count=read_cpu_count(tree),
        runtimes=tools if tools is not None else (probe_tools() if live else None),
    )
