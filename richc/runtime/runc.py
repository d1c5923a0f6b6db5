"""The runc runtime: the ContainerSpec as an OCI bundle, run by ``runc`` (or ``crun``).

The bundle is the container's directory: ``config.json`` (from
:mod:`richc.runtime.oci_config`) next to ``rootfs/``. runc keeps its state under richc's
run directory (``runc --root RUN/runc``), and every call goes through :mod:`richc.run`.

A start is ``runc create`` then ``runc start``. The create is run by a console keeper
(:mod:`richc.runtime.console_keeper`), a small process per container that plays the part of
LXC's monitor: the init becomes its child (it reaps it), the init's stdio is a pty whose
slave is also the container's ``/dev/console`` (through the ``RUN/containers/NAME/console``
symlink the bundle names) and whose master the keeper copies to ``console.log``, and at
the init's exit it runs richc's poststop callback and ``runc delete``. That gives busybox's
getty a console, as under LXC, and poststop hooks run however the container stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

from richc.errors import HostUnsupported, RuntimeFailure
from richc.pidwait import wait_exit
from richc.run import base_env, run, spawn_detached, which
from richc.runtime.base import ExecRequest, RuntimeStatus
from richc.runtime.oci_config import bounding_set, oci_signal, render_config
from richc.spec import ContainerSpec
from richc.store import ContainerDir, write_atomic

log = logging.getLogger("richc")

# Tried in this order when no binary is given: runc works on every cgroup layout, crun
# 1.8 refuses hybrid hosts ("cgroups in hybrid mode not supported").
BINARIES = ("runc", "crun")
CREATE_TIMEOUT = 60.0
KEEPER_GRACE = 5.0  # seconds a console keeper may take to finish after its init exited
KILL_KEEPER_WAIT = 10.0  # as LXC's kill waits up to 10 s for STOPPED (post-stop hook run)


def cgroups_path(name: str) -> str:
    """The container's cgroup below each hierarchy's root (``cgroups.locate``'s *scope*)."""
    return f"/{cgroup_scope(name)}"


def cgroup_scope(name: str) -> str:
    # Named like LXC's lxc.payload.NAME, so it is unique in the path and easy to spot.
    return f"richc.payload.{name}"


class RuncRuntime:
    name = "runc"

    def __init__(self, binary: str | os.PathLike[str] | None = None) -> None:
        self._binary = Path(binary) if binary is not None else None

    @property
    def binary(self) -> Path:
        if self._binary is None:
            for candidate in BINARIES:
                found = which(candidate)
                if found is not None:
                    self._binary = found
                    break
            else:
                raise HostUnsupported(
                    "neither runc nor crun is installed",
                    hint="`apt-get install runc`, or use --runtime lxc",
                )
        return self._binary

    def cgroup_scope(self, name: str) -> str:
        return cgroup_scope(name)

    def _cmd(self, cdir: ContainerDir, *args: str) -> list[str]:
        return [str(self.binary), "--root", str(cdir.store.paths.runc_state), *args]

    def _console_link(self, cdir: ContainerDir) -> Path:
        return cdir.run_dir / "console"

    def _keeper_file(self, cdir: ContainerDir) -> Path:
        return cdir.run_dir / "console-keeper.pid"

    def _keeper_pid(self, cdir: ContainerDir) -> int | None:
        """The pid of this container's console keeper, if it still runs."""
        try:
            pid = int(self._keeper_file(cdir).read_text())
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                return pid if b"richc.runtime.console_keeper" in handle.read() else None
        except (OSError, ValueError):
            return None

    def _wait_keeper(self, cdir: ContainerDir, timeout: float) -> None:
        pid = self._keeper_pid(cdir)
        if pid is not None and not wait_exit(pid, timeout):
            log.debug("%s: the console keeper (pid %d) is still busy", cdir.name, pid)

    def _retire_keeper(self, cdir: ContainerDir) -> None:
        """Let the last start's keeper finish before a new start: its `runc delete` at the
        old init's exit must not hit the new container of the same name."""
        pid = self._keeper_pid(cdir)
        if pid is not None and not wait_exit(pid, KEEPER_GRACE):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_exit(pid, KEEPER_GRACE)
        self._keeper_file(cdir).unlink(missing_ok=True)

    def render(self, spec: ContainerSpec, cdir: ContainerDir) -> None:
        config = render_config(
            spec,
            cgroups_path=cgroups_path(cdir.name),
            console=str(self._console_link(cdir)),
            bounding=bounding_set(Path("/proc/self/status").read_text()),
        )
        write_atomic(cdir.bundle / "config.json", json.dumps(config, indent=2) + "\n", 0o600)

    def _state(self, cdir: ContainerDir) -> dict[str, Any] | None:
        """runc's state of the container, or None when runc has no such container."""
        proc = run(self._cmd(cdir, "state", cdir.name), check=False)
        if proc.returncode != 0:
            if _missing(proc.stderr):
                return None
            raise RuntimeFailure(
                f"{self.binary.name} state {cdir.name} failed: {proc.stderr.strip()}",
                hint=f"runc's state is under {cdir.store.paths.runc_state}",
            )
        data = json.loads(proc.stdout)
        return data if isinstance(data, dict) else None

    def _delete(self, cdir: ContainerDir, force: bool = False) -> None:
        args = ["delete", *(["--force"] if force else []), cdir.name]
        proc = run(self._cmd(cdir, *args), check=False)
        if proc.returncode != 0 and not _missing(proc.stderr):
            raise RuntimeFailure(
                f"{self.binary.name} could not delete {cdir.name}: {proc.stderr.strip()}",
                hint=f"try `{self.binary} --root {cdir.store.paths.runc_state} delete "
                f"--force {cdir.name}`",
            )

    def start(self, spec: ContainerSpec, cdir: ContainerDir) -> int:
        # An init that exited by itself leaves a "stopped" container behind in runc until
        # something deletes it (the console keeper normally does).
        if self._state(cdir) is not None:
            self._delete(cdir, force=True)
        self._retire_keeper(cdir)
        cdir.run_dir.mkdir(parents=True, exist_ok=True)
        spec.log_dir.mkdir(parents=True, exist_ok=True)
        bind_idmapped_rootfs(spec)
        pid = self._create(spec, cdir)
        try:
            if spec.security is not None and spec.security.idmap is not None:
                delegate_cgroups(pid, spec.security.idmap.host_uid_start)
            # The init waits in runc's create until `runc start`: its network namespace is
            # there to give NICs to before anything inside runs.
            attach_nics(spec, pid)
            run(self._cmd(cdir, "start", cdir.name), hint=self._log_hint(cdir))
        except BaseException:
            with contextlib.suppress(Exception):
                self._delete(cdir, force=True)
            raise
        return pid

    def _log_hint(self, cdir: ContainerDir) -> str:
        return f"see {cdir.log_dir / 'runc.log'} and {cdir.log_dir / 'console.log'}"

    def _create(self, spec: ContainerSpec, cdir: ContainerDir) -> int:
        """``runc create`` run by a new console keeper (see :mod:`richc.runtime.console_keeper`);
        returns the init's pid."""
        master, slave = os.openpty()
        idmap = spec.security.idmap if spec.security is not None else None
        if idmap is not None:
            # As LXC does for its console: the container's root owns it. systemd reopens
            # /dev/console, and a host-root pty is no one's in the user namespace (EACCES).
            os.fchown(slave, idmap.host_uid_start, idmap.host_gid_start)
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        try:
            link = self._console_link(cdir)
            tmp = link.with_name(".console.tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(os.ttyname(slave))
            tmp.replace(link)
            pid_file = cdir.run_dir / "init.pid"
            pid_file.unlink(missing_ok=True)
            runc_log = cdir.log_dir / "runc.log"
            # runc's own messages go to its log file rather than onto the console.
            create = self._cmd(
                cdir, "--log", str(runc_log), "--log-format", "json", "create",
                "--bundle", str(cdir.bundle), "--pid-file", str(pid_file), cdir.name,
            )  # fmt: skip
            keeper = [
                sys.executable, "-m", "richc.runtime.console_keeper",
                "--master", str(master), "--slave", str(slave), "--status-fd", str(status_w),
                "--pid-file", str(pid_file), "--log", str(cdir.log_dir / "console.log"),
                "--delete", shlex.join(self._cmd(cdir, "delete", cdir.name)),
            ]  # fmt: skip
            callback = spec.poststop_callback
            if callback:
                # LXC appends "NAME lxc post-stop" to its hook; the same shape here.
                keeper += ["--poststop", f"{callback} {shlex.quote(cdir.name)} runc post-stop"]
            keeper_log = os.open(
                cdir.log_dir / "console-keeper.log",
                os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                0o640,
            )
            try:
                keeper_pid = spawn_detached(
                    [*keeper, "--", *create],
                    pass_fds=(master, slave, status_w),
                    output=keeper_log,
                    env=base_env({"PYTHONPATH": _package_root()}),
                )
            finally:
                os.close(keeper_log)
            write_atomic(self._keeper_file(cdir), f"{keeper_pid}\n")
        finally:
            for fd in (master, slave, status_w):
                os.close(fd)
        try:
            report = _read_report(status_r, CREATE_TIMEOUT)
        finally:
            os.close(status_r)
        word, _, value = report.partition(" ")
        if word != "ok" or not value.isdigit():
            raise RuntimeFailure(
                f"{self.binary.name} could not create {cdir.name}: {_last_error(runc_log)}",
                hint=self._log_hint(cdir) + f" and {cdir.log_dir / 'console-keeper.log'}",
            )
        return int(value)

    def status(self, cdir: ContainerDir) -> RuntimeStatus:
        state = self._state(cdir)
        if state is None or state.get("status") not in ("running", "paused"):
            return RuntimeStatus(False)
        pid = state.get("pid")
        return RuntimeStatus(True, pid if isinstance(pid, int) and pid > 0 else None)

    def shutdown(self, spec: ContainerSpec, cdir: ContainerDir, timeout: float) -> bool:
        status = self.status(cdir)
        if not status.running or status.pid is None:
            self._delete(cdir, force=True)
            return True
        proc = run(
            self._cmd(cdir, "kill", cdir.name, str(oci_signal(spec.halt_signal))), check=False
        )
        if proc.returncode != 0 and self.status(cdir).running:
            raise RuntimeFailure(
                f"{self.binary.name} could not signal {cdir.name}: {proc.stderr.strip()}",
                hint=self._log_hint(cdir),
            )
        deadline = time.monotonic() + timeout
        if not wait_exit(status.pid, timeout):
            return False
        # As LXC's stop returns only after its monitor ran the post-stop hook: let the
        # keeper run the poststop callback within what is left of the timeout.
        self._wait_keeper(cdir, max(deadline - time.monotonic(), KEEPER_GRACE))
        self._delete(cdir, force=True)
        return True

    def kill(self, cdir: ContainerDir) -> None:
        status = self.status(cdir)
        if status.running:
            # --all: without a pid namespace of its own the init's children would survive.
            run(self._cmd(cdir, "kill", "--all", cdir.name, "KILL"), check=False)
            if status.pid is not None and not wait_exit(status.pid, 10):
                raise RuntimeFailure(
                    f"{cdir.name}'s init (pid {status.pid}) survived SIGKILL",
                    hint="it may be stuck in the kernel (D state); see `cat /proc/PID/stack`",
                )
            self._wait_keeper(cdir, KILL_KEEPER_WAIT)
        self._delete(cdir, force=True)

    def exec(self, cdir: ContainerDir, request: ExecRequest) -> int:
        args = ["exec", "--user", f"{request.uid}:{request.gid}", "--cwd", request.cwd]
        for key, value in request.env:
            args += ["--env", f"{key}={value}"]
        args += [cdir.name, *request.argv]
        # stdio is the caller's; runc passes the command's exit status through (128+N
        # for a death by signal N, as a shell reports it).
        proc = run(self._cmd(cdir, *args), check=False, capture=False, stdin=0)
        return proc.returncode

    def cleanup(self, cdir: ContainerDir) -> None:
        with contextlib.suppress(RuntimeFailure, HostUnsupported):
            self._delete(cdir, force=True)
        self._retire_keeper(cdir)
        (cdir.bundle / "config.json").unlink(missing_ok=True)
        self._console_link(cdir).unlink(missing_ok=True)
        unbind_idmapped_rootfs(cdir.rootfs.with_name(cdir.rootfs.name + ".idmapped"))


def _missing(stderr: str) -> bool:
    """Whether runc's (or crun's) error says there is no such container."""
    text = stderr.lower()
    # runc: "container does not exist"; crun: "error opening file `.../status`: No such file"
    return any(s in text for s in ("does not exist", "not found", "no such file or directory"))


def _read_report(fd: int, timeout: float) -> str:
    """The keeper's one-line report; "" if it died or said nothing within *timeout*."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 256)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _last_error(runc_log: Path) -> str:
    """The last message in runc's JSON-lines (or crun's text) log."""
    try:
        lines = runc_log.read_text().strip().splitlines()
    except OSError:
        return "no log"
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            return line.strip()
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg", line))
    return lines[-1] if lines else "no log"


def _package_root() -> str:
    """The directory holding the ``richc`` package, so the keeper imports this very richc."""
    return str(Path(__file__).resolve().parents[2])


def attach_nics(spec: ContainerSpec, pid: int) -> None:
    """Make *spec*'s NICs in the namespace of the init *pid* (netctl, through netlink)."""
    if not spec.nics:
        return
    from ipaddress import IPv4Address, IPv4Interface

    from netctl import veth
    from netctl.errors import NetError

    for nic in spec.nics:
        wanted = veth.NicSpec(
            container=spec.name,
            index=nic.index,
            bridge=nic.bridge,
            mac=nic.mac,
            address=IPv4Interface(nic.address) if nic.address else None,
            gateway=IPv4Address(nic.gateway) if nic.gateway else None,
            veth=nic.host_veth,
        )
        try:
            veth.attach(wanted, pid)
        except NetError as exc:
            raise RuntimeFailure(f"{spec.name}: {exc.message}", hint=exc.hint) from None


def bind_idmapped_rootfs(spec: ContainerSpec) -> None:
    """Where the spec asks for it, bind the rootfs idmapped at ``spec.idmapped_rootfs``
    (config.json's root.path): runc 1.1 has no idmapped mounts of its own. Made afresh at
    every start, after the prestart hooks, so their bind mounts below the rootfs (a host
    directory) are part of it; recursive, so they are idmapped with it."""
    policy = spec.security
    if policy is None or policy.idmap is None or not policy.runtime_idmaps_rootfs:
        return
    from isolation import idmount
    from isolation.errors import IsolationError

    target = spec.idmapped_rootfs
    unbind_idmapped_rootfs(target)
    target.mkdir(mode=0o755, exist_ok=True)
    try:
        idmount.idmapped_bind(spec.rootfs, target, policy.idmap)
    except IsolationError as exc:
        raise RuntimeFailure(
            f"cannot bind {spec.name}'s rootfs idmapped for runc: {exc}",
            hint=exc.hint or "re-create the container with --privileged",
        ) from None


def unbind_idmapped_rootfs(target: Path) -> None:
    """Remove the idmapped bind (and what a hook mounted below it); absent is fine."""
    from isolation import idmount

    while idmount.is_mount_point(target):
        idmount.unmount(target)
    with contextlib.suppress(OSError):
        target.rmdir()


# The files of a cgroup a delegated (unprivileged) owner may write, as LXC chowns them:
# v1's task lists, and v2's from /sys/kernel/cgroup/delegate (read at run time). Never the
# limit files: the container must not raise its own limits.
DELEGATED_V1 = ("tasks", "cgroup.procs", "cgroup.clone_children")
DELEGATE_LIST = "/sys/kernel/cgroup/delegate"


def delegate_cgroups(pid: int, host_root: int) -> None:
    """Give the cgroups of the init *pid* (still waiting in ``runc create``) to the
    container's root (host uid and gid *host_root*), as LXC does for an unprivileged
    container: systemd makes its init.scope and units below them. runc 1.1 leaves them to
    host root, and systemd then fails "Failed to create /init.scope control group"."""
    from richc import mountinfo

    try:
        with open(DELEGATE_LIST) as handle:
            delegate_v2 = tuple(handle.read().split())
    except OSError:
        delegate_v2 = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control")
    mounts = [m for m in mountinfo.read() if m.fstype in ("cgroup", "cgroup2")]
    with open(f"/proc/{pid}/cgroup") as handle:
        lines = handle.read().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for mount in mounts:
            if controllers == "":
                if mount.fstype != "cgroup2":
                    continue
                files = delegate_v2
            elif mount.fstype == "cgroup" and set(controllers.split(",")) <= set(
                mount.super_options
            ):
                files = DELEGATED_V1
            else:
                continue
            # The hierarchy's mount may be of a subtree (its root field); richc's own are /.
            if mount.root != "/" and not path.startswith(mount.root):
                continue
            relative = path[len(mount.root) :] if mount.root != "/" else path
            directory = Path(mount.mountpoint + relative)
            if not directory.is_dir() or relative in ("", "/"):
                continue  # never a hierarchy's root
            os.chown(directory, host_root, host_root)
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    os.chown(directory / name, host_root, host_root)
            break
