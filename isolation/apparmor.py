"""AppArmor: is it on, richc's own container profile as text, and loading it.

The profile confines the container's processes the way LXC's ``lxc-container-default-cgns``
does, written for richc: everything a system container needs is allowed (files, network,
signals, ptrace and mounts inside), and the rules below are what a root that is not
stopped by namespaces alone could use against the host:

- no writes to the host-wide knobs in /proc (sysrq-trigger, kcore, kmem, mem, the
  kernel.* sysctls that name programs the host runs: core_pattern, modprobe, hotplug) and
  /sys (kernel/, firmware/, power/, uevent_helper);
- no mounts of /proc or /sys, of devpts or securityfs with foreign options, no remounts
  of / read-write and no mounts of a filesystem type the container has no business with
  (the kernel's own pseudo filesystems); binds, tmpfs, cgroup, overlay, fuse and ext4
  images are allowed so systemd's units and nested tools keep working;
- no ``pivot_root`` to anywhere but a fresh tree (systemd's sandboxing uses it) and no
  change of profile except to richc's nesting child.

This host has no AppArmor (no /sys/module/apparmor), so richc only renders the profile
here; the tests check the text.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from isolation.errors import IsolationError, StrPath, ToolFailed

PROFILE_NAME = "richc-container"
# The profile of a container made with --nesting: the same, plus what a runtime inside
# needs to mount its containers' /proc and /sys, and no access to the unmasked views.
NESTING_PROFILE_NAME = "richc-container-nesting"

ENABLED_PARAM = "sys/module/apparmor/parameters/enabled"
PROFILES_FILE = "sys/kernel/security/apparmor/profiles"


@dataclass(frozen=True)
class AppArmorStatus:
    enabled: bool
    reason: str
    parser: str | None = None

    def __bool__(self) -> bool:
        return self.enabled


def status(sysroot: StrPath = "/") -> AppArmorStatus:
    """Whether AppArmor confines processes here: the module is on (``Y``), securityfs is
    mounted so profiles can be loaded, and ``apparmor_parser`` is installed."""
    root = Path(sysroot)
    try:
        enabled = (root / ENABLED_PARAM).read_text().strip()
    except FileNotFoundError:
        return AppArmorStatus(False, "the kernel has no AppArmor (no /sys/module/apparmor)")
    except OSError as exc:
        return AppArmorStatus(False, f"cannot read {ENABLED_PARAM}: {exc.strerror}")
    if enabled != "Y":
        return AppArmorStatus(False, "AppArmor is built in but disabled (apparmor=0 at boot?)")
    if not (root / PROFILES_FILE).exists():
        return AppArmorStatus(
            False, "securityfs is not mounted at /sys/kernel/security: profiles cannot be loaded"
        )
    parser = shutil.which("apparmor_parser")
    if parser is None:
        return AppArmorStatus(False, "apparmor_parser is not installed (apt-get install apparmor)")
    return AppArmorStatus(True, "AppArmor is enabled", parser)


# The body, with {name} and {nesting} filled in by render_profile. Paths are spelled out
# (no @{PROC} tunables) so the profile parses with nothing but the base abstractions.
_TEMPLATE = """\
# richc's container profile; rendered by isolation.apparmor, loaded with apparmor_parser -r.
#include <tunables/global>

profile {name} flags=(attach_disconnected,mediate_deleted) {{
  #include <abstractions/base>

  # What a system container's init and services use freely.
  file,
  network,
  capability,
  signal,
  ptrace,
  unix,
  dbus,
  umount,

  # Host-wide knobs in /proc: readable where the kernel allows, never writable.
  deny /proc/sysrq-trigger rwklx,
  deny /proc/kcore rwklx,
  deny /proc/kmem rwklx,
  deny /proc/mem rwklx,
  deny /proc/sys/kernel/core_pattern wklx,
  deny /proc/sys/kernel/modprobe wklx,
  deny /proc/sys/kernel/hotplug wklx,
  deny /proc/sys/kernel/poweroff_cmd wklx,
  deny /proc/sys/vm/** wklx,
  deny /proc/sys/fs/binfmt_misc/** wklx,
  deny /proc/*/attr/** w,

  # /sys: the kernel, firmware and power management are the host's.
  deny /sys/kernel/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/power/** wklx,
  deny /sys/devices/virtual/powercap/** rwklx,
  deny /sys/fs/cgroup/*/release_agent w,
  deny /sys/fs/cgroup/release_agent w,

  # Mounts: the container's own trees, never the kernel's views of the host.
  deny mount fstype=proc -> /proc/**,
{sysfs}  deny mount fstype=securityfs,
  deny mount fstype=debugfs,
  deny mount fstype=tracefs,
  deny mount fstype=configfs,
  deny mount fstype=efivarfs,
  deny mount fstype=bpf,
  deny mount fstype=devpts options=(rw),
  deny mount options=(ro, remount) -> /,
  deny mount options=(ro, remount, silent) -> /,
  mount fstype=proc -> /proc/,
  mount fstype=tmpfs,
  mount fstype=mqueue,
  mount fstype=cgroup -> /sys/fs/cgroup/**,
  mount fstype=cgroup2 -> /sys/fs/cgroup/**,
  mount fstype=overlay,
  mount fstype=fuse,
  mount fstype=fuse.*,
  mount fstype=ext4,
  mount fstype=devpts options=(rw, nosuid, noexec),
  mount options=(rw, bind),
  mount options=(rw, rbind),
  mount options=(ro, remount, bind),
  mount options=(rw, remount, bind),
  mount options=(rw, make-slave) -> **,
  mount options=(rw, make-rslave) -> **,
  mount options=(rw, make-private) -> **,
  mount options=(rw, make-rprivate) -> **,
  mount options=(rw, make-shared) -> **,
  mount options=(rw, make-rshared) -> **,
  mount options=(rw, make-unbindable) -> **,
  mount options=(rw, make-runbindable) -> **,
  pivot_root,
{nesting}}}
"""

_NO_SYSFS = "  deny mount fstype=sysfs,\n"

_NESTING = """\

  # Nesting (isolation.nesting): a runtime inside mounts its containers' /proc and /sys
  # (LXC below /usr/lib/*/lxc, runc in a bundle anywhere; never over this /proc), and
  # its containers run under richc's profile, stacked. The unmasked views at /dev/.lxc
  # exist only for the kernel's visibility check: nothing here may read or write them.
  mount fstype=proc,
  mount fstype=sysfs,
  deny /dev/.lxc/proc/** rwklx,
  deny /dev/.lxc/sys/** rwklx,
  change_profile -> {child},
  change_profile -> {child}//&*,
"""


def render_profile(name: str = PROFILE_NAME, *, nesting: bool = False) -> str:
    """richc's AppArmor profile text for ``apparmor_parser``; *nesting* gives the variant
    for ``--nesting`` (conventionally named :data:`NESTING_PROFILE_NAME`)."""
    if not name or any(c.isspace() or c in "{}\"'" for c in name):
        raise ValueError(f"{name!r} is not a usable AppArmor profile name")
    extra = _NESTING.format(child=PROFILE_NAME) if nesting else ""
    return _TEMPLATE.format(name=name, nesting=extra, sysfs="" if nesting else _NO_SYSFS)


def load_profile(text: str, *, parser: str | None = None) -> None:
    """Load (or replace) a profile into the kernel with ``apparmor_parser -r``."""
    binary = parser or shutil.which("apparmor_parser")
    if binary is None:
        raise IsolationError(
            errno.ENOENT, "apparmor_parser is not installed",
            hint="apt-get install apparmor, or run with --apparmor unconfined",
        )  # fmt: skip
    # With no file argument apparmor_parser reads the profile from stdin.
    argv = [binary, "--replace"]
    result = subprocess.run(argv, input=text, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolFailed(argv, result.returncode, result.stderr)


def lxc_apparmor_keys(name: str | None) -> list[tuple[str, str]]:
    """``lxc.apparmor.profile``: richc's profile, or ``unconfined`` (None), the setting
    for a host without AppArmor (see :func:`status`)."""
    return [("lxc.apparmor.profile", name or "unconfined")]


def oci_apparmor(name: str | None) -> dict[str, str]:
    """The ``process`` keys of a config.json: runc leaves ``apparmorProfile`` out to run
    unconfined."""
    return {"apparmorProfile": name} if name else {}
