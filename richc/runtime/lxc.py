"""The LXC runtime, driven through the python ``lxc`` bindings (liblxc).

This is the only module that imports ``lxc``. The bindings report failure as ``False``;
every such result becomes a typed error here, pointing at the container's LXC log.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from richc.errors import HostUnsupported, RuntimeFailure
from richc.run import SYSTEM_PATH
from richc.runtime.base import ExecRequest, RuntimeStatus

if TYPE_CHECKING:
    from richc.spec import ContainerSpec
    from richc.store import ContainerDir


def _lxc() -> Any:
    try:
        import lxc
    except ImportError as exc:
        raise HostUnsupported(
            f"the python lxc bindings cannot be imported: {exc}",
            hint="install lxc-dev and `pip install lxc`, or use --runtime runc",
        ) from None
    return lxc


class LxcRuntime:
    name = "lxc"

    def _container(self, cdir: ContainerDir) -> Any:
        return _lxc().Container(cdir.name, str(cdir.store.paths.containers))

    def _log_hint(self, cdir: ContainerDir) -> str:
        return f"see {cdir.log_dir / 'lxc.log'} for LXC's own account"

    def cgroup_scope(self, name: str) -> str:
        # LXC 4 and later, as richc's config sets no lxc.cgroup.dir.
        return f"lxc.payload.{name}"

    def render(self, spec: ContainerSpec, cdir: ContainerDir) -> None:
        from richc.datafiles import templates_dir
        from richc.store import write_atomic

        spec.log_dir.mkdir(parents=True, exist_ok=True)
        # Rendering needs jinja2 (~20 ms to import); skip it when neither the spec nor the
        # template changed since the config on disk was written. The key is kept whole, not
        # hashed: hashlib loads OpenSSL (~3 ms), and it is a few kilobytes.
        key = repr(spec) + "\n" + (templates_dir() / "lxc/config.j2").read_text()
        try:
            if (
                cdir.lxc_config_key.read_text() == key
                and cdir.lxc_config.is_file()
                and (spec.seccomp_file is None or spec.seccomp_file.is_file())
            ):
                return
        except FileNotFoundError:
            pass
        if spec.security is not None and spec.security.seccomp is not None:
            from isolation.seccomp import render_lxc

            # The profile LXC reads at start (lxc.seccomp.profile), beside its config.
            if spec.seccomp_file is None:
                raise ValueError("a seccomp profile needs the spec's seccomp_file")
            write_atomic(spec.seccomp_file, render_lxc(spec.security.seccomp), 0o600)
        write_atomic(cdir.lxc_config, config_text(spec))
        # After the config, and not fsynced: a key lost in a crash only costs a render.
        write_atomic(cdir.lxc_config_key, key, durable=False)

    def start(self, spec: ContainerSpec, cdir: ContainerDir) -> int:
        # liblxc moves the *calling* process into the container's monitor cgroups. Starting
        # from a short-lived child keeps richc (and a long-lived supervisor) out of them.
        _lxc()  # missing bindings: say so here, not as a bare failure of the child
        # LXC's monitor, which lives as long as the container, is a fork of whatever calls
        # start: a fork of this Python process costs ~14 MiB resident per container (500
        # containers: 7 GiB), one of lxc-start about 1 MiB. So the child execs lxc-start.
        lxc_start = shutil.which("lxc-start", path=SYSTEM_PATH)
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the forked child
            code = 1
            try:
                if lxc_start is not None:
                    lxcpath = str(cdir.store.paths.containers)
                    # -q: its errors are in the container's lxc.log, which the hint names.
                    argv = ["lxc-start", "-q", "-d", "-n", cdir.name, "-P", lxcpath]
                    os.execv(lxc_start, argv)
                code = 0 if self._container(cdir).start() else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeFailure(f"LXC could not start {cdir.name}", hint=self._log_hint(cdir))
        container = self._container(cdir)
        if not container.wait("RUNNING", 10):
            raise RuntimeFailure(f"{cdir.name} did not reach RUNNING", hint=self._log_hint(cdir))
        pid = int(container.init_pid)
        if pid <= 0:
            raise RuntimeFailure(f"{cdir.name} started but has no init", hint=self._log_hint(cdir))
        return pid

    def status(self, cdir: ContainerDir) -> RuntimeStatus:
        if not cdir.lxc_config.exists():
            return RuntimeStatus(False)
        container = self._container(cdir)
        if not container.running:
            return RuntimeStatus(False)
        pid = int(container.init_pid)
        return RuntimeStatus(True, pid if pid > 0 else None)

    def shutdown(self, spec: ContainerSpec, cdir: ContainerDir, timeout: float) -> bool:
        container = self._container(cdir)
        if not container.running:
            return True
        return bool(container.shutdown(max(int(timeout), 1)))

    def kill(self, cdir: ContainerDir) -> None:
        container = self._container(cdir)
        if container.running and not container.stop():
            raise RuntimeFailure(f"LXC could not kill {cdir.name}", hint=self._log_hint(cdir))
        container.wait("STOPPED", 10)

    def exec(self, cdir: ContainerDir, request: ExecRequest) -> int:
        lxc = _lxc()
        container = self._container(cdir)
        status = container.attach_wait(
            lxc.attach_run_command,
            list(request.argv),
            env_policy=lxc.LXC_ATTACH_CLEAR_ENV,
            extra_env_vars=[f"{k}={v}" for k, v in request.env],
            uid=request.uid,
            gid=request.gid,
            initial_cwd=request.cwd,
        )
        if status < 0:
            raise RuntimeFailure(f"LXC could not attach to {cdir.name}", hint=self._log_hint(cdir))
        # attach_wait returns the raw wait status; a death by signal N reads as 128+N, as
        # in a shell.
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code

    def console(self, cdir: ContainerDir) -> None:
        """Attach the caller's terminal to the container's console; Ctrl-a q detaches."""
        container = self._container(cdir)
        if not container.console(ttynum=-1, stdinfd=0, stdoutfd=1, stderrfd=2, escape=1):
            raise RuntimeFailure(
                f"cannot attach to {cdir.name}'s console", hint=self._log_hint(cdir)
            )

    def cleanup(self, cdir: ContainerDir) -> None:
        # LXC keeps nothing outside the container directory and the log directory.
        Path(cdir.lxc_config).unlink(missing_ok=True)
        cdir.lxc_config_key.unlink(missing_ok=True)
        cdir.seccomp_file.unlink(missing_ok=True)


def config_text(spec: ContainerSpec) -> str:
    """The LXC config of *spec* (a pure function; golden tests pin it)."""
    from richc.spec.cgroupfiles import cgroup_files
    from richc.templating import render

    cgroup = cgroup_files(spec.limits, spec.cgroup_version, io_weight_file=spec.io_weight_file)
    security: list[tuple[str, str]] = []
    sys_bind = spec.network == "host" and not spec.privileged
    if spec.security is not None:
        from isolation.policy import lxc_keys

        security = lxc_keys(spec.security, spec.seccomp_file)
    return render(
        "lxc/config.j2",
        spec=spec,
        cgroup=cgroup,
        init_cmd=" ".join(spec.argv),
        security=security,
        sys_bind=sys_bind,
    )
