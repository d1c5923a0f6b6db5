"""Find a running container's cgroup directories on the host, and read and write their files.

The container is found from its init: ``/proc/PID/cgroup`` names the init's cgroup in every
hierarchy, ``/proc/self/mountinfo`` says where each hierarchy is mounted. This works for
every runtime (LXC, runc) and every layout (cgroup v1, v2, hybrid), and needs no runtime
call. An init that manages cgroups itself (systemd) moves into a child such as
``init.scope``, so the container's cgroup is found by walking up to the runtime's directory:
``lxc.payload.NAME`` for LXC 4 and later, or a directory named by the caller (runc's
cgroupsPath).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from richc import mountinfo
from richc.errors import NotFound, RichcError

# v1 hierarchies that carry no resource controller, only a name (systemd's tracking tree).
_NAMED_ONLY = "name="
# What a systemd init inside the container creates below the container's cgroup.
_INIT_SCOPES = ("init.scope",)


@dataclass(frozen=True)
class CgroupMounts:
    """Where the host mounts each hierarchy: v1 controller -> mount point, and cgroup2."""

    v1: dict[str, Path] = field(default_factory=dict)
    v2: Path | None = None


def parse_mountinfo(text: str) -> CgroupMounts:
    """The cgroup mounts in a mountinfo(5) text; the first mount of each hierarchy wins."""
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for mount in mountinfo.parse(text):
        if mount.root != "/":
            # A bind of a sub-cgroup (the root field is not /) is not the hierarchy's root.
            continue
        mountpoint = Path(mount.mountpoint)
        if mount.fstype == "cgroup2" and v2 is None:
            v2 = mountpoint
        elif mount.fstype == "cgroup":
            for option in mount.super_options:
                if option in ("rw", "ro") or "=" in option or option.startswith(_NAMED_ONLY):
                    continue
                v1.setdefault(option, mountpoint)
    # Super options list only controllers and flags; drop the flags that slipped through.
    for flag in ("noprefix", "clone_children", "xattr", "cpuset_v2_mode", "relatime"):
        v1.pop(flag, None)
    return CgroupMounts(v1, v2)


def host_mounts(mountinfo: str = "/proc/self/mountinfo") -> CgroupMounts:
    with open(mountinfo) as handle:
        return parse_mountinfo(handle.read())


@dataclass(frozen=True)
class ProcCgroup:
    """One line of /proc/PID/cgroup: hierarchy id, its controllers, the cgroup's path."""

    hierarchy: int
    controllers: tuple[str, ...]
    path: str


def parse_proc_cgroup(text: str) -> list[ProcCgroup]:
    out: list[ProcCgroup] = []
    for line in text.splitlines():
        hid, sep, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not sep or not sep2:
            continue
        names = tuple(c for c in controllers.split(",") if c and not c.startswith(_NAMED_ONLY))
        out.append(ProcCgroup(int(hid), names, path))
    return out


def container_path(init_path: str, scope: str | None) -> str:
    """The container's cgroup given its init's: up to *scope*, else above an init scope."""
    parts = [p for p in init_path.split("/") if p]
    if scope is not None and scope in parts:
        return "/" + "/".join(parts[: parts.index(scope) + 1])
    while parts and parts[-1] in _INIT_SCOPES:
        parts.pop()
    return "/" + "/".join(parts)


def controller_of(filename: str) -> str:
    """The controller a cgroup file belongs to: ``memory.max`` -> ``memory``."""
    return filename.partition(".")[0]


@dataclass(frozen=True)
class ContainerCgroup:
    """A running container's cgroup: the directory per controller, for one cgroup version."""

    version: int
    dirs: dict[str, Path]  # controller -> directory; on v2 every controller shares one
    unified: Path | None = None  # the v2 directory (also present on hybrid hosts)

    def path(self, filename: str) -> Path:
        if self.version == 2:
            if self.unified is None:
                raise NotFound(f"no cgroup2 directory for {filename}")
            return self.unified / filename
        controller = controller_of(filename)
        directory = self.dirs.get(controller)
        if directory is None:
            raise NotFound(
                f"the host has no {controller} cgroup controller mounted (for {filename})",
                hint="see `richc doctor` for the cgroup layout",
            )
        return directory / filename

    def read(self, filename: str) -> str:
        with open(self.path(filename)) as handle:
            return handle.read()

    def read_optional(self, filename: str) -> str | None:
        """The file's text, or None where the kernel or controller does not provide it."""
        try:
            return self.read(filename)
        except (OSError, NotFound):
            return None

    def write(self, filename: str, value: str) -> None:
        """Write *value* with one write(2), as the kernel wants; raises OSError with the path."""
        path = self.path(filename)
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        except OSError as exc:
            raise OSError(exc.errno, os.strerror(exc.errno or errno.EIO), str(path)) from None
        finally:
            os.close(fd)


def locate(
    pid: int,
    *,
    version: int,
    name: str | None = None,
    scope: str | None = None,
    mounts: CgroupMounts | None = None,
    proc: Path = Path("/proc"),
) -> ContainerCgroup:
    """The cgroup of the container whose init is *pid*.

    *scope* is the directory name the runtime made for the container; by default LXC's
    ``lxc.payload.NAME``. *version* is the hierarchy that carries the limits (1 on hybrid).
    """
    if scope is None and name is not None:
        scope = f"lxc.payload.{name}"
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError as exc:
        raise NotFound(
            f"cannot read the cgroups of pid {pid}: {exc.strerror}",
            hint="the container stopped while richc looked at it",
        ) from None
    if mounts is None:
        mounts = host_mounts(str(proc / "self/mountinfo"))
    dirs: dict[str, Path] = {}
    unified: Path | None = None
    for entry in parse_proc_cgroup(text):
        rel = container_path(entry.path, scope).lstrip("/")
        if entry.hierarchy == 0 and not entry.controllers:
            if mounts.v2 is not None:
                unified = mounts.v2 / rel
            continue
        for controller in entry.controllers:
            mountpoint = mounts.v1.get(controller)
            if mountpoint is not None:
                dirs[controller] = mountpoint / rel
    if version == 2 and unified is None:
        raise RichcError(
            f"pid {pid} is in no cgroup2 hierarchy, but the limits are set on cgroup v2",
            hint="see `richc doctor` for the host's cgroup layout",
        )
    if version == 2 and unified is not None:
        dirs = {c: unified for c in _v2_controllers(unified)}
    return ContainerCgroup(version, dirs, unified)


def _v2_controllers(directory: Path) -> Iterable[str]:
    try:
        return (directory / "cgroup.controllers").read_text().split()
    except OSError:
        return ()
