"""``richc doctor``'s report: one decision per check, and a stable JSON document.

The JSON layout is a contract (docs/doctor.md): keys are snake_case, their order is fixed
here, and ``schema_version`` changes when a key is removed or changes meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from richc.probe.decide import (
    LIMIT_CONTROLLERS,
    Decision,
    Features,
    QuotaSelection,
    choose_cgroup_mount,
    choose_runtime,
    features,
    quota_backends,
    spec_namespaces,
)
from richc.probe.host import CgroupLayout, HostProbe
from richc.probe.kernel import REQUIREMENTS, has, requirement
from richc.probe.tools import RuntimeTools, Tool

SCHEMA_VERSION = 1


def _kernel(probe: HostProbe) -> Decision:
    version = probe.kernel.version
    missing = [r for r in REQUIREMENTS if not has(version, r.feature)]
    if version is None:
        use, why = "no version-gated feature", "the kernel release is unreadable"
    elif missing:
        use = f"{len(missing)} newer features off"
        why = "lacks " + ", ".join(f"{r.feature} ({r.since})" for r in missing)
    else:
        use = "every feature"
        why = f"{version} has every kernel feature richc knows how to use"
    return Decision("kernel", probe.kernel.release or "unknown", use, why)


def _namespaces(probe: HostProbe) -> Decision:
    create = spec_namespaces(probe)
    missing = [ns for ns in ("mount", "pid", "uts", "ipc", "network") if ns not in create]
    if missing:
        why = "missing " + " ".join(missing) + ": containers cannot be isolated"
    elif "cgroup" in create:
        why = "cgroup namespace present (4.6+): the container sees its own cgroup as /"
    else:
        why = "no cgroup namespace (kernel < 4.6): the container sees host cgroup paths"
    source = "" if probe.namespaces.listed else " (from the kernel version)"
    value = " ".join(probe.namespaces.available) + source
    return Decision("namespaces", value, "create " + " ".join(create), why)


def _cgroups(probe: HostProbe, feats: Features) -> Decision:
    cg = probe.cgroups
    parts = []
    if cg.v1_controllers:
        parts.append("v1: " + " ".join(cg.v1_controllers))
    if cg.v2_mountpoint is not None:
        parts.append("v2: " + (" ".join(cg.v2_controllers) or "none"))
    value = f"{cg.layout} ({'; '.join(parts)})" if parts else str(cg.layout)
    if feats.cgroup_version == 0:
        return Decision("cgroups", value, "no limits", "no cgroup hierarchy is mounted")
    lacking = []
    for controller in LIMIT_CONTROLLERS:
        if controller in feats.cgroup_controllers:
            continue
        if controller in cg.disabled_controllers:
            lacking.append(f"{controller} disabled at boot")
        elif controller not in cg.kernel_controllers:
            lacking.append(f"{controller} not in this kernel")
        else:
            lacking.append(f"{controller} not on cgroup v{feats.cgroup_version}")
    if feats.cgroup_version == 2:
        use, why = "lxc.cgroup2.* keys, OCI unified resources", "limit controllers are on cgroup2"
    else:
        use = "lxc.cgroup.* keys, OCI v1 resources"
        why = "limit controllers are on v1 hierarchies"
        if cg.layout is CgroupLayout.hybrid:
            why += f" (the cgroup2 mount at {cg.v2_mountpoint} holds no limit controllers)"
    if lacking:
        why += "; refused limits: " + ", ".join(lacking)
    return Decision("cgroups", value, use, why)


def _cgroup_mount(probe: HostProbe, feats: Features) -> Decision:
    entry, why = choose_cgroup_mount(probe.cgroups, feats.use_cgroup_ns)
    value = "cgroup namespace" if feats.use_cgroup_ns else "no cgroup namespace"
    use = f"lxc.mount.auto {entry}" if entry else "no cgroup entry in lxc.mount.auto"
    return Decision("cgroup_mount", value, use, why)


def _overlay(probe: HostProbe) -> Decision:
    fs = probe.filesystems
    if fs.overlay_loaded:
        return Decision("overlayfs", "yes", "available", "overlay is in /proc/filesystems")
    if fs.overlay:
        why = "built as a module; mount(2) loads it on first use"
        return Decision("overlayfs", "module", "available", why)
    since = requirement("overlayfs").since
    why = f"not in /proc/filesystems nor the kernel config (upstream since {since})"
    return Decision("overlayfs", "no", "not used", why)


def _fuse(probe: HostProbe) -> Decision:
    fs = probe.filesystems
    value = ("fuse" if fs.fuse else "no fuse") + (
        ", /dev/fuse" if fs.dev_fuse else ", no /dev/fuse"
    )
    if fs.fuse and fs.dev_fuse:
        return Decision("fuse", value, "available", "lxcfs can run")
    return Decision("fuse", value, "not used", "without FUSE there are no lxcfs views")


def _lxcfs(probe: HostProbe, feats: Features, binary: Tool) -> Decision:
    lxcfs = probe.lxcfs
    installed = f"lxcfs {binary.version or ''}".strip() if binary.present else "lxcfs not installed"
    if lxcfs.mountpoints:
        value = "mounted at " + ", ".join(
            f"{m} (dead)" if m in lxcfs.dead else m for m in lxcfs.mountpoints
        )
    else:
        value = f"not mounted; {installed}"
    if not feats.has_fuse:
        return Decision("lxcfs", value, "no views", "FUSE is unavailable")
    if feats.lxcfs_mountpoint:
        return Decision("lxcfs", value, "views", f"lxcfs answers at {feats.lxcfs_mountpoint}")
    if lxcfs.dead and binary.present:
        why = "every lxcfs mount is dead (ENOTCONN): it must be restarted and its views re-attached"
        return Decision("lxcfs", value, "views after a restart", why)
    if binary.present:
        return Decision("lxcfs", value, "views", "richc starts lxcfs when a container wants views")
    return Decision("lxcfs", value, "no views", "install lxcfs for /proc views of the limits")


def _open_tree(feats: Features) -> Decision:
    since = requirement("open_tree").since
    if feats.has_open_tree:
        why = f"kernel >= {since}: detached clones can cross mount namespaces"
        return Decision("lxcfs_remount", "open_tree, move_mount", "remount in place", why)
    why = f"kernel < {since} has no open_tree/move_mount; a dead lxcfs needs a restart"
    return Decision("lxcfs_remount", "no open_tree", "restart the container", why)


def _pidfd(feats: Features) -> Decision:
    since = requirement("pidfd").since
    if feats.has_pidfd:
        return Decision("pidfd", "pidfd_open", "pidfds", f"kernel >= {since}")
    return Decision("pidfd", "none", "pid polling", f"pidfd_open needs kernel {since}")


def _quota(probe: HostProbe, selection: QuotaSelection | None) -> Decision:
    quota = probe.quota
    where = f" ({quota.mountpoint})" if quota.mountpoint else ""
    value = f"{quota.path} on {quota.fstype or 'unknown'}{where}"
    if selection is not None:
        # On this host: create's own checks, so the answer is what `create --disk` does.
        why = "; ".join(f"{b.name}: {b.why}" for b in selection.tried)
        return Decision("quota", value, selection.backend or "none: --disk is refused", why)
    backends = quota_backends(quota, probe.kernel.version)
    chosen = next((b for b in backends if b.possible), None)
    # Say why each preferred backend was passed over, then why the chosen one works.
    shown = backends if chosen is None else backends[: backends.index(chosen) + 1]
    why = "; ".join(f"{b.name}: {b.why}" for b in shown)
    return Decision("quota", value, chosen.name if chosen else "none: --disk is refused", why)


def _seccomp(probe: HostProbe) -> Decision:
    sc = probe.seccomp
    if sc.filter:
        value = "filter" + (f" ({len(sc.actions)} actions)" if sc.actions else "")
        return Decision("seccomp", value, "filters allowed", "SECCOMP_MODE_FILTER is available")
    value = "strict only" if sc.status_field else "no Seccomp field in /proc/self/status"
    return Decision("seccomp", value, "no seccomp profile", "the kernel has no seccomp filters")


def _apparmor(probe: HostProbe) -> Decision:
    if probe.apparmor.enabled:
        why = "AppArmor is enabled; the container's init must be able to mount"
        return Decision("apparmor", "enabled", "lxc.apparmor.profile = unconfined", why)
    return Decision("apparmor", "disabled", "no profile", "AppArmor is not enabled in this kernel")


def _user_namespaces(probe: HostProbe) -> Decision:
    userns = probe.user_namespaces
    if not userns.present:
        value = "absent"
    elif userns.max_namespaces == 0:
        value = "present, disabled (user.max_user_namespaces = 0)"
    else:
        limit = f", max {userns.max_namespaces}" if userns.max_namespaces is not None else ""
        clone = userns.unprivileged_clone
        unpriv = f", unprivileged_userns_clone = {clone}" if clone is not None else ""
        value = f"present{limit}{unpriv}"
    use = "usable" if userns.usable else "unusable"
    why = "richc runs privileged system containers: no id mapping is needed"
    return Decision("user_namespaces", value, use, why)


def _tools(probe: HostProbe) -> RuntimeTools:
    if probe.runtimes is None:
        raise ValueError("a doctor report needs the live runtime checks (probe_host(live=True))")
    return probe.runtimes


def _runtime(probe: HostProbe) -> Decision:
    tools = _tools(probe)
    parts = [
        f"lxc bindings {tools.lxc.version or ''}".strip()
        if tools.lxc.loaded
        else "no lxc bindings",
        *(f"{t.name} {t.path}" if t.present else f"no {t.name}" for t in (tools.runc, tools.crun)),
    ]
    choice = choose_runtime(probe)
    if choice.runtime is None:
        use = "auto -> none"
    elif choice.runtime == "lxc":
        use = "auto -> lxc"
    else:
        use = f"auto -> runc ({choice.binary})"
    return Decision("runtime", "; ".join(parts), use, choice.why)


def _systemd(probe: HostProbe) -> Decision:
    sd = probe.systemd
    value = f"PID 1 is {sd.pid1_comm}" if sd.pid1_comm else "PID 1 unknown"
    if sd.pid1:
        return Decision("systemd", value, "systemctl", "systemd is PID 1: units are started")
    why = "no systemd as PID 1: `richc unit` writes unit files but cannot start them"
    return Decision("systemd", value, "unit files only", why)


def decisions(
    probe: HostProbe, feats: Features | None = None, quota: QuotaSelection | None = None
) -> tuple[Decision, ...]:
    feats = feats or features(probe)
    return (
        _kernel(probe),
        _namespaces(probe),
        _cgroups(probe, feats),
        _cgroup_mount(probe, feats),
        _overlay(probe),
        _fuse(probe),
        _lxcfs(probe, feats, _tools(probe).lxcfs),
        _open_tree(feats),
        _pidfd(feats),
        _quota(probe, quota),
        _seccomp(probe),
        _apparmor(probe),
        _user_namespaces(probe),
        _runtime(probe),
        _systemd(probe),
    )


def _tool(tool: Tool) -> dict[str, Any]:
    return {"present": tool.present, "path": tool.path, "version": tool.version}


@dataclass(frozen=True)
class HostReport:
    probe: HostProbe
    features: Features
    decisions: tuple[Decision, ...]
    quota: QuotaSelection | None = None

    @classmethod
    def of(cls, probe: HostProbe, quota: QuotaSelection | None = None) -> HostReport:
        """The report on *probe*; *quota*, the live choice ``create`` would make, overrides
        the one judged from the probe's facts (a recorded tree has only those)."""
        feats = features(probe)
        if quota is not None:
            feats = replace(feats, quota_backend=quota.backend)
        return cls(probe, feats, decisions(probe, feats, quota), quota)

    def to_json(self) -> dict[str, Any]:
        """The documented ``richc doctor --format json`` document (docs/doctor.md)."""
        p, f, tools = self.probe, self.features, _tools(self.probe)
        cg = p.cgroups
        return {
            "schema_version": SCHEMA_VERSION,
            "root": p.root,
            "kernel": {
                "release": p.kernel.release,
                "version": [f.kernel.major, f.kernel.minor, f.kernel.patch] if f.kernel else None,
                "config": p.kernel.config_source,
            },
            "namespaces": {
                "available": list(p.namespaces.available),
                "listed": p.namespaces.listed,
            },
            "cgroups": {
                "layout": str(cg.layout),
                "v1_controllers": list(cg.v1_controllers),
                "v2_controllers": list(cg.v2_controllers),
                "v2_mountpoint": cg.v2_mountpoint,
                "disabled_controllers": list(cg.disabled_controllers),
                "hierarchies": [
                    {
                        "mountpoint": h.mountpoint,
                        "version": h.version,
                        "controllers": list(h.controllers),
                    }
                    for h in cg.hierarchies
                ],
            },
            "filesystems": {
                "overlay": p.filesystems.overlay,
                "overlay_loaded": p.filesystems.overlay_loaded,
                "fuse": p.filesystems.fuse,
                "dev_fuse": p.filesystems.dev_fuse,
            },
            "lxcfs": {
                "mountpoints": list(p.lxcfs.mountpoints),
                "dead": list(p.lxcfs.dead),
                "binary": _tool(tools.lxcfs),
            },
            "quota": {
                "path": p.quota.path,
                "mountpoint": p.quota.mountpoint,
                "fstype": p.quota.fstype,
                "project_option": p.quota.project_option,
                "kernel_quota": p.quota.kernel_quota,
                "qfmt_v2": p.quota.qfmt_v2,
                "xfs_quota": p.quota.xfs_quota,
                "loop_module": p.quota.loop_module,
                "backends": [
                    {"name": b.name, "possible": b.possible, "why": b.why}
                    for b in quota_backends(p.quota, f.kernel)
                ],
                "selected": None
                if self.quota is None
                else {
                    "path": self.quota.path,
                    "backend": self.quota.backend,
                    "tried": [
                        {"name": b.name, "possible": b.possible, "why": b.why}
                        for b in self.quota.tried
                    ],
                },
            },
            "seccomp": {
                "status_field": p.seccomp.status_field,
                "mode": p.seccomp.mode,
                "filter": p.seccomp.filter,
                "actions": list(p.seccomp.actions),
            },
            "apparmor": {"enabled": p.apparmor.enabled},
            "user_namespaces": {
                "present": p.user_namespaces.present,
                "max_namespaces": p.user_namespaces.max_namespaces,
                "unprivileged_clone": p.user_namespaces.unprivileged_clone,
                "usable": p.user_namespaces.usable,
            },
            "systemd": {
                "pid1": p.systemd.pid1,
                "pid1_comm": p.systemd.pid1_comm,
                "booted": p.systemd.booted,
            },
            "runtimes": {
                "lxc": {
                    "bindings": tools.lxc.loaded,
                    "liblxc": tools.lxc.liblxc,
                    "version": tools.lxc.version,
                    "error": tools.lxc.error,
                },
                "runc": _tool(tools.runc),
                "crun": _tool(tools.crun),
            },
            "cpu_count": p.cpu_count,
            "features": {
                "cgroup_layout": str(f.cgroup_layout),
                "cgroup_version": f.cgroup_version,
                "cgroup_controllers": list(f.cgroup_controllers),
                "use_cgroup_ns": f.use_cgroup_ns,
                "namespaces": list(f.namespaces),
                "lxc_cgroup_mount": f.lxc_cgroup_mount,
                "has_open_tree": f.has_open_tree,
                "has_pidfd": f.has_pidfd,
                "has_overlay": f.has_overlay,
                "has_fuse": f.has_fuse,
                "has_user_ns": f.has_user_ns,
                "has_seccomp_filter": f.has_seccomp_filter,
                "apparmor": f.apparmor,
                "systemd_pid1": f.systemd_pid1,
                "lxcfs_mountpoint": f.lxcfs_mountpoint,
                "quota_backend": f.quota_backend,
                "runtime": f.runtime,
                "runtime_binary": f.runtime_binary,
                "cpu_count": f.cpu_count,
            },
            "checks": [
                {"check": d.check, "value": d.value, "use": d.use, "why": d.why}
                for d in self.decisions
            ],
        }

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The table: one row per check (name, value, what richc will use, why)."""
        return [(d.check, d.value, d.use, d.why) for d in self.decisions]
