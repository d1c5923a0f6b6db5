"""What this host offers the secure defaults, in one report for ``richc doctor``: user
namespaces, the ownership method a rootfs directory gets (idmapped mount or shift), the
seccomp filter actions, and AppArmor. Each entry says why, in a sentence a user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from isolation import apparmor, nesting, overlay
from isolation.errors import StrPath

MAX_USER_NAMESPACES = "proc/sys/user/max_user_namespaces"
SECCOMP_ACTIONS = "proc/sys/kernel/seccomp/actions_avail"
# The actions richc's profiles use: errno for the deny list, allow for the rest.
NEEDED_SECCOMP_ACTIONS = frozenset({"errno", "allow"})


@dataclass(frozen=True)
class Feature:
    available: bool
    detail: str

    def __bool__(self) -> bool:
        return self.available


@dataclass(frozen=True)
class HostSupport:
    user_namespaces: Feature
    ownership: overlay.OwnershipPlan
    seccomp: Feature
    apparmor: apparmor.AppArmorStatus
    proc_visible: Feature

    def lines(self) -> list[tuple[str, str]]:
        """``(item, text)`` rows for doctor's output."""
        return [
            ("user namespaces", self.user_namespaces.detail),
            ("rootfs ownership", f"{self.ownership.method.value}: {self.ownership.reason}"),
            ("seccomp", self.seccomp.detail),
            ("apparmor", self.apparmor.reason),
            ("fresh /proc", self.proc_visible.detail),
        ]


def user_namespaces(sysroot: StrPath = "/") -> Feature:
    path = Path(sysroot) / MAX_USER_NAMESPACES
    try:
        limit = int(path.read_text())
    except FileNotFoundError:
        return Feature(False, "the kernel has no user namespaces (CONFIG_USER_NS)")
    except (OSError, ValueError) as exc:
        return Feature(False, f"cannot read /{MAX_USER_NAMESPACES}: {exc}")
    if limit == 0:
        return Feature(
            False, "user.max_user_namespaces is 0: set it above 0 for unprivileged containers"
        )
    return Feature(True, f"available (user.max_user_namespaces = {limit})")


def seccomp(sysroot: StrPath = "/") -> Feature:
    path = Path(sysroot) / SECCOMP_ACTIONS
    try:
        actions = set(path.read_text().split())
    except FileNotFoundError:
        return Feature(False, "the kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)")
    except OSError as exc:
        return Feature(False, f"cannot read /{SECCOMP_ACTIONS}: {exc.strerror}")
    missing = NEEDED_SECCOMP_ACTIONS - actions
    if missing:
        return Feature(False, f"the kernel lacks seccomp actions {', '.join(sorted(missing))}")
    return Feature(True, f"filters available (actions: {' '.join(sorted(actions))})")


def proc_visible(sysroot: StrPath = "/") -> Feature:
    """Whether a container in a new user namespace may mount its own /proc and /sys here:
    false inside a container that was not made for nesting (:mod:`isolation.nesting`)."""
    try:
        text = (Path(sysroot) / "proc/self/mountinfo").read_text()
    except OSError as exc:
        return Feature(False, f"cannot read /proc/self/mountinfo: {exc.strerror}")
    what = nesting.hidden(text)
    if what is None:
        return Feature(
            True, "a fully visible /proc and /sys: unprivileged containers can mount theirs"
        )
    return Feature(
        False,
        f"{what}: unprivileged containers cannot start here (inside a container: re-create it"
        " with --nesting)",
    )


def host_support(rootfs_dir: StrPath, sysroot: StrPath = "/") -> HostSupport:
    """The report for containers whose rootfs (or shared images) live in *rootfs_dir*."""
    return HostSupport(
        user_namespaces(sysroot),
        overlay.plan_ownership(rootfs_dir),
        seccomp(sysroot),
        apparmor.status(sysroot),
        proc_visible(sysroot),
    )
