"""One container's security settings, rendered for either runtime in one call: the thin
layer richc's LXC template and OCI renderer use.

``SecurityPolicy`` holds the choices (a user-namespace map or privileged, a seccomp profile
or unconfined, an AppArmor profile, the masked paths); :func:`lxc_keys` gives the config
lines to append, :func:`apply_oci` merges everything into a config.json dict. Both are pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from isolation import masked, nesting, seccomp
from isolation.errors import StrPath
from isolation.idmap import IdMap, lxc_idmap_keys, oci_id_mappings

# Capabilities no container needs and richc always drops (<linux/capability.h> names):
# loading modules, raw I/O ports and /dev/mem, the host clock, and the LSM's own controls.
DROPPED_CAPS = ("sys_module", "sys_rawio", "sys_time", "mac_admin", "mac_override")


@dataclass(frozen=True)
class SecurityPolicy:
    """What isolates one container. ``idmap`` None is ``--privileged``; ``seccomp`` None is
    ``--seccomp unconfined``; ``apparmor`` None runs unconfined (hosts without AppArmor).
    ``runtime_idmaps_rootfs``: the runtime must idmap the rootfs itself (LXC's
    ``idmap=container`` on a plain directory); False when richc has done it (an overlay
    over an idmapped image, a shifted tree, or runc's pre-made idmapped bind).
    ``nesting``: an unmasked proc and sysfs below /dev, so unprivileged containers can
    start inside (:mod:`isolation.nesting`)."""

    idmap: IdMap | None
    seccomp: seccomp.Profile | None = None
    apparmor: str | None = None
    mask_paths: bool = True
    runtime_idmaps_rootfs: bool = False
    nesting: bool = False

    @property
    def privileged(self) -> bool:
        return self.idmap is None


def default_policy(idmap: IdMap | None, **overrides: Any) -> SecurityPolicy:
    """richc's defaults: the default seccomp profile and masked paths."""
    settings: dict[str, Any] = {"seccomp": seccomp.default_profile()}
    settings.update(overrides)
    return SecurityPolicy(idmap, **settings)


def lxc_keys(policy: SecurityPolicy, seccomp_file: StrPath | None) -> list[tuple[str, str]]:
    """``(key, value)`` lines for an LXC config. *seccomp_file* is where the caller wrote
    ``seccomp.render_lxc(policy.seccomp)`` (None when unconfined)."""
    keys: list[tuple[str, str]] = []
    if policy.idmap is not None:
        keys += lxc_idmap_keys(policy.idmap)
        if policy.runtime_idmaps_rootfs:
            keys.append(("lxc.rootfs.options", "idmap=container"))
    if policy.seccomp is not None and seccomp_file is None:
        raise ValueError("a seccomp profile needs the file it was rendered to")
    keys += seccomp.lxc_seccomp_keys(seccomp_file if policy.seccomp is not None else None)
    keys.append(("lxc.apparmor.profile", policy.apparmor or "unconfined"))
    if policy.mask_paths:
        keys += masked.lxc_mount_entries()
    if policy.nesting:
        keys += nesting.lxc_mount_entries()
    return keys


def apply_oci(config: dict[str, Any], policy: SecurityPolicy, arch: str | None = None) -> None:
    """Merge *policy* into an OCI config.json dict in place: the user namespace and its
    mappings, the seccomp filter, masked and read-only paths (added to those already
    there), and the AppArmor profile. runc 1.1 cannot idmap a rootfs, so with
    ``runtime_idmaps_rootfs`` the caller must point ``root.path`` at an idmapped bind."""
    linux = config.setdefault("linux", {})
    process = config.setdefault("process", {})
    if policy.idmap is not None:
        namespaces = linux.setdefault("namespaces", [])
        if not any(ns.get("type") == "user" for ns in namespaces):
            namespaces.append({"type": "user"})
        linux.update(oci_id_mappings(policy.idmap))
    if policy.seccomp is not None:
        linux["seccomp"] = seccomp.render_oci(policy.seccomp, arch)
    else:
        linux.pop("seccomp", None)
    if policy.mask_paths:
        for key, paths in masked.oci_paths().items():
            have = linux.setdefault(key, [])
            have += [p for p in paths if p not in have]
    if policy.nesting:
        mounts = config.setdefault("mounts", [])
        targets = {m.get("destination") for m in mounts}
        mounts += [m for m in nesting.oci_mounts() if m["destination"] not in targets]
    if policy.apparmor:
        process["apparmorProfile"] = policy.apparmor
    else:
        process.pop("apparmorProfile", None)
