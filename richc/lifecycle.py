"""Container lifecycle operations: create, start, stop, restart and remove.

Each takes the container's lock, so two richc processes acting on one container serialise.
Every operation is safe to re-run after a crash: state written before a step says what a
later `rm --force` has to undo.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

from richc import config as cfg
from richc.context import Context
from richc.errors import Conflict, NotFound, RichcError
from richc.hostfacts import host_facts, resolve_devices
from richc.procs import parent_of_init, start_time
from richc.runtime import runtime_for
from richc.spec import ContainerSpec, Paths, build_spec
from richc.state import InitRecord, State, now
from richc.store import ContainerDir

log = logging.getLogger("richc")


def choose_runtime(requested: cfg.RuntimeName) -> str:
    """The runtime for a new container: the one asked for, or what `richc doctor` picks."""
    if requested is not cfg.RuntimeName.auto:
        return requested.value
    try:
        # The probe's first rule, without the probe (~35 ms): lxc whenever its bindings load.
        import lxc  # noqa: F401
    except Exception:  # as the probe: a broken binding raises anything, not only ImportError
        pass
    else:
        return "lxc"
    from richc.errors import HostUnsupported
    from richc.probe import auto_runtime

    choice = auto_runtime()
    if choice.runtime is None:
        raise HostUnsupported(
            f"no container runtime works on this host: {choice.why}",
            hint="install lxc and lxc-dev (and `pip install lxc`) or runc; see `richc doctor`",
        )
    log.debug("runtime auto: %s (%s)", choice.runtime, choice.why)
    return choice.runtime


def new_config(ctx: Context, data: dict[str, Any]) -> cfg.ContainerConfig:
    """The config of a new container from merged file and flag *data*: richc.yaml's host
    defaults filled in, then the limits checked against this host (its CPUs, controllers
    and devices), so create and its dry run refuse the same things."""
    from richc.config.security import check_profile
    from richc.hostfacts import validate_for_host
    from richc.hostres import net
    from richc.hostres.lxcfs import with_host_default

    config = cfg.from_dict(net.with_host_default(ctx.paths, with_host_default(ctx.paths, data)))
    validate_for_host(config.limits, ctx.paths.run)
    check_profile(config.security)
    return config


def make_spec(
    ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
) -> ContainerSpec:
    from richc import hostres
    from richc.hookrun import claim

    parts = hostres.contributions(config, state)  # from what each resource recorded
    spec = build_spec(
        config,
        cfg.Init(state.init),
        Paths(rootfs=cdir.rootfs, log_dir=cdir.log_dir),
        host_facts(ctx.paths.run),
        limits=resolve_devices(config.limits),
        mounts=tuple(m for p in parts for m in p.mounts),
        cap_drop_extra=tuple(c for p in parts for c in p.cap_drop),
        nics=tuple(n for p in parts for n in p.nics),
        security=next((p.security for p in parts if p.security is not None), None),
    )
    if spec.security is not None and spec.security.seccomp is not None:
        spec = dataclasses.replace(spec, seccomp_file=cdir.seccomp_file)
    # What the runtime runs when the container stops for any reason (poststop hooks).
    callback = claim.callback_command(ctx.paths.root, cdir.run_dir)
    return dataclasses.replace(spec, poststop_callback=callback)


def create(ctx: Context, config: cfg.ContainerConfig) -> State:
    from richc.rootfs import populate

    store = ctx.store
    cdir = store.reserve(config.name)
    with cdir.lock():
        state = State(
            name=config.name,
            status="creating",
            created_at=now(),
            runtime=choose_runtime(config.runtime),
        )
        try:
            cdir.save_state(state)
            cdir.save_config(config)
            from richc.hostres import disk, net, security

            # The id range before anything is made: the overlay's view and the rootfs's
            # ownership need it, and a crash from here on leaves it for `rm --force`.
            security.reserve(ctx, cdir, config, state)
            if not config.net.keep_ip:  # addresses first: a clash refuses before any copy
                net.allocate(ctx, cdir, config, state)
            disk.create_rootfs(ctx, cdir, config, state)  # under a quota when --disk is set
            with disk.fitting(ctx, cdir, config, state):
                result = populate(config, cdir, ctx.paths, state)
            state.init = result.init.value
            state.rootfs = str(cdir.rootfs)
            state.applied = [c.to_dict() for c in result.changes]
            if config.net.keep_ip:  # the VM's own address, read from the copied tree
                nics = net.keep_ip(ctx, cdir, config)
                config = dataclasses.replace(
                    config, net=dataclasses.replace(config.net, nics=nics, keep_ip=False)
                )
                cdir.save_config(config)
                net.allocate(ctx, cdir, config, state)
            if config.source == "busybox" or config.source.startswith("debian:"):
                net.resolv_conf(cdir, state)
            security.own_rootfs(ctx, cdir, state)  # after every write richc makes in it
            state.status = "created"
            cdir.save_state(state)
            _prerender(ctx, cdir, config, state)
        except BaseException:
            # Leave nothing half-made; if even this fails, state says "creating" and
            # `rm --force` finishes the job.
            with contextlib.suppress(Exception):
                _destroy(ctx, cdir, state)
            with contextlib.suppress(Exception):
                _release_if_last(ctx)  # the default network a failed create made
            raise
    return state


def _prerender(ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State) -> None:
    """Render the LXC config now, for the lxcfs views the first start will most likely
    record. create has jinja2 loaded already; the first start then finds the config's
    render key matching and skips jinja2 (~25 ms). A wrong guess only costs that start
    the render, so this never fails a create."""
    if state.runtime != "lxc":
        return  # runc writes its config.json at every start anyway
    from richc.hostres import lxcfs

    try:
        expected = lxcfs.expected_record(ctx, config, state)
        if expected is None:
            return  # no start on this host recorded lxcfs's views yet
        guess = dataclasses.replace(state, lxcfs=expected)
        runtime_for(state).render(make_spec(ctx, cdir, config, guess), cdir)
    except (RichcError, OSError, ValueError) as exc:
        log.debug("%s: no config rendered ahead of the first start: %s", cdir.name, exc)


def is_running(cdir: ContainerDir, state: State) -> tuple[bool, int | None]:
    status = runtime_for(state).status(cdir)
    return status.running, status.pid


def _record_init(state: State, pid: int) -> None:
    parent = None
    if state.runtime == "lxc":  # its monitor forks the new init of an in-container reboot
        parent = parent_of_init(pid)
    state.init_run = InitRecord(
        pid=pid,
        pid_start_time=start_time(pid),
        # stats and set find the cgroup from here without importing the runtime.
        cgroup_scope=runtime_for(state).cgroup_scope(state.name),
        parent_pid=parent[0] if parent else None,
        parent_start_time=parent[1] if parent else None,
    )


def follow_reboot(ctx: Context, name: str, old_pid: int) -> tuple[int, int | None] | None:
    """After *old_pid* exited: the init the container rebooted into, recorded, or None."""
    from richc.procs import recorded_init

    cdir = ctx.store.get(name)
    with cdir.lock():
        state = cdir.load_state()
        found = recorded_init(state.init_run)
        if found is None or found[0] == old_pid:
            return None
        _record_init(state, found[0])
        cdir.save_state(state)
        return found


def may_reboot(ctx: Context, name: str) -> bool:
    """Whether the process that would fork a rebooted init (LXC's monitor) is still there."""
    from richc.procs import is_same_process

    record = ctx.store.get(name).load_state().init_run
    if record is None or record.parent_pid is None:
        return False
    return is_same_process(record.parent_pid, record.parent_start_time)


def start(ctx: Context, name: str, *, unless_stop_requested: bool = False) -> State:
    """Start *name*. A supervisor restarting it passes *unless_stop_requested*: a `richc stop`
    since the last start then wins (Conflict), checked under the lock so the two cannot race."""
    cdir = ctx.store.get(name)
    with cdir.lock():
        state = cdir.load_state()
        _refuse_broken(state)
        if unless_stop_requested and state.stop_requested:
            raise Conflict(f"{name} was stopped on request", hint=f"`richc start {name}`")
        config = cdir.load_config()
        runtime = runtime_for(state)
        if runtime.status(cdir).running:
            raise Conflict(f"{name} is already running", hint=f"`richc restart {name}` restarts it")
        from richc import hostres

        # Loop images and overlays are unmounted after a host reboot; lxcfs may need
        # starting; each records what it made.
        for resource in hostres.all_resources():
            resource.prepare(ctx, cdir, config, state)
        spec = make_spec(ctx, cdir, config, state)
        runtime.render(spec, cdir)
        from richc.hookrun import stages as hook_stages

        state.hook_match = hook_stages.match_record(spec)

        hook_stages.arm_poststop(ctx, cdir, config, state)
        hook_stages.prestart(ctx, cdir, config, state, spec)  # rootfs ready, no init yet
        try:
            pid = runtime.start(spec, cdir)
        except RichcError as exc:
            # Undo what prestart hooks did; a no-op if the runtime's callback already ran.
            hook_stages.poststop_once(ctx, cdir, config, state, spec=spec)
            from richc.hostres.security import explain_start_failure

            raise explain_start_failure(state, exc) from None
        state.started_at = now()
        state.stopped_at = None
        state.stop_requested = None
        state.restarting = False
        _record_init(state, pid)
        cdir.save_state(state)
        try:
            hook_stages.poststart(ctx, cdir, config, state, spec, pid)
        except hook_stages.HookFailed:
            _stop_locked(ctx, cdir, config, state, timeout=None, kill=False, prestop=False)
            raise
    return state


def stop(
    ctx: Context,
    name: str,
    *,
    timeout: float | None = None,
    kill: bool = False,
    requested: bool = True,
    restarting: bool = False,
) -> bool:
    """Stop *name*; return True if init shut down cleanly, False if it had to be killed.

    A *requested* stop is marked in the state before the init is asked to go, so a
    `start --foreground` supervisor sees "stopped by request", not "init died", and never
    restarts it. The supervisor's own clean-up after an init died passes requested=False.
    """
    if timeout is not None and not 0 <= timeout <= cfg.MAX_STOP_TIMEOUT:  # also nan, inf
        from richc.errors import UsageError

        raise UsageError(
            f"--timeout {timeout}: expected 0 to {cfg.MAX_STOP_TIMEOUT} seconds",
            hint=f"e.g. richc stop {name} --timeout 30",
        )
    cdir = ctx.store.get(name)
    with cdir.lock():
        state = cdir.load_state()
        _refuse_broken(state)
        if requested:
            state.stop_requested = now()
            state.restarting = restarting
            cdir.save_state(state)
        config = cdir.load_config()
        clean = _stop_locked(ctx, cdir, config, state, timeout=timeout, kill=kill)
    return clean


def _stop_locked(
    ctx: Context,
    cdir: ContainerDir,
    config: cfg.ContainerConfig,
    state: State,
    *,
    timeout: float | None,
    kill: bool,
    prestop: bool = True,
) -> bool:
    from richc.hookrun import stages as hook_stages

    runtime = runtime_for(state)
    clean = True
    claimed = False
    spec: ContainerSpec | None = None
    status = runtime.status(cdir)
    if status.running and status.pid and status.pid != state.pid:
        _record_init(state, status.pid)  # it rebooted from inside since richc started it
    if status.running:
        spec = make_spec(ctx, cdir, config, state)
        if prestop:
            hook_stages.prestop(ctx, cdir, config, state, spec, status.pid)
        # This process has the hook machinery loaded: it runs the poststop hooks itself,
        # once the init is gone. Claimed now, the runtime's own callback (which LXC's
        # monitor waits for before it reports the stop) finds the claim and exits at once.
        claimed = state.init_run is not None and hook_stages.claim_poststop(cdir)
        wait = config.stop_timeout if timeout is None else timeout
        # LXC reports a container stopped only after its poststop callback ran: an init
        # that exited in time is a clean stop even while that still runs.
        if kill or not (
            runtime.shutdown(spec, cdir, wait)
            or hook_stages.wait_poststop(
                ctx, cdir, config, state, spec, status.pid, claimed=claimed
            )
        ):
            if not kill:
                log.warning(
                    "%s did not shut down within %s s after %s; killing it",
                    cdir.name,
                    wait,
                    spec.halt_signal,
                )
            runtime.kill(cdir)
            clean = False
    if state.init_run is not None:  # this run was started: its poststop hooks are due
        hook_stages.after_stop(ctx, cdir, config, state, spec, claimed=claimed)
    from richc import hostres

    for resource in reversed(hostres.all_resources()):
        resource.stopped(ctx, cdir, state)
    state.stopped_at = now()
    state.init_run = None
    cdir.save_state(state)
    return clean


def restart(ctx: Context, name: str, *, timeout: float | None = None) -> State:
    # "restarting" tells a `start --foreground` supervisor to wait for the new init and
    # supervise it, rather than take the stop as the end.
    stop(ctx, name, timeout=timeout, restarting=True)
    return start(ctx, name)


def remove(ctx: Context, name: str, *, force: bool = False) -> None:
    store = ctx.store
    try:
        cdir = store.get(name)
    except NotFound:
        if force:
            # An rm killed after the container was gone but before the last one's shared
            # holdings (default network, lxcfs) were let go: `rm --force` finishes that.
            _release_if_last(ctx)
        raise
    with cdir.lock():
        state = cdir.load_state()
        if state.status == "creating" and not force:
            raise Conflict(
                f"{name} was not fully created (an earlier create was interrupted)",
                hint=f"clean it up with `richc rm --force {name}`",
            )
        running = False
        with contextlib.suppress(RichcError):
            running = runtime_for(state).status(cdir).running if state.runtime else False
        if running:
            if not force:
                raise Conflict(
                    f"{name} is running",
                    hint=f"stop it first (`richc stop {name}`) or use `richc rm --force {name}`",
                )
            runtime_for(state).kill(cdir)
        if state.init_run is not None:  # its poststop hooks, if the runtime did not run them
            from richc.hookrun import stages as hook_stages

            with contextlib.suppress(RichcError):
                hook_stages.after_stop(ctx, cdir, cdir.load_config(), state, None)
        _destroy(ctx, cdir, state)
    _release_if_last(ctx)


def _release_if_last(ctx: Context) -> None:
    """The last container of the store gone: stop the lxcfs richc started and take the
    networks down (they stay defined), so a throwaway root leaves no daemon or link."""
    if ctx.store.names():  # checked here too: the lxcfs glue costs ~10 ms to import
        return
    from richc import networks
    from richc.hostres import lxcfs

    lxcfs.release_if_unused(ctx)
    networks.down_if_unused(ctx.paths, ctx.store)


def _destroy(ctx: Context, cdir: ContainerDir, state: State) -> None:
    """Undo everything create made, in reverse; each step tolerates its part being gone."""
    from richc import hostres
    from richc.rootfs import importer

    importer.cleanup(cdir)  # what a killed disk import left mounted and attached
    resources = hostres.all_resources()
    # The unit first (it would start a ghost at boot), then the runtime's files, then the
    # overlay mount, the quota (subvolume, image + loop device): start order reversed.
    hostres.get("unit").release(ctx, cdir, state)
    if state.runtime:
        with contextlib.suppress(RichcError):
            runtime_for(state).cleanup(cdir)
    for resource in reversed(resources):
        if resource.name != "unit":
            resource.release(ctx, cdir, state)
    ctx.store.remove(cdir)
    # The lock file too (held now, so no other richc is inside; one still waiting finds
    # the container gone), or the locks directory grows by one file per name ever used.
    cdir.lock_file.unlink(missing_ok=True)


def _refuse_broken(state: State) -> None:
    if state.status == "creating":
        raise Conflict(
            f"{state.name} was not fully created (an earlier create was interrupted)",
            hint=f"remove it with `richc rm --force {state.name}` and create it again",
        )
