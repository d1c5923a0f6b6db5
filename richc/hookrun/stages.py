"""The four stages as the lifecycle runs them, with their failure policy.

- :func:`prestart` raises :class:`HookFailed` on a blocking failure, after running the
  poststop hooks so that earlier prestart hooks can undo what they did (as OCI does);
- :func:`poststart` waits for the init to be ready, then raises :class:`HookFailed` on a
  blocking failure; the caller stops the container;
- :func:`prestop` and :func:`poststop_once` only report.

poststop runs exactly once per run of the container, whoever notices the stop first: the
runtime's own callback (LXC's ``lxc.hook.post-stop``, which runs however the container
stopped) or ``richc stop``/``rm`` afterwards. The first to create the claim file
``RUN/containers/NAME/hooks-poststop.json`` runs the hooks; :func:`arm_poststop` removes
it before each start. The file also says when that run is over (``status: done``): LXC
answers STOPPED to state queries as soon as the init is gone, while its monitor still runs
the callback, so ``richc stop`` and the next ``richc start`` wait on the file, not on LXC.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any, cast

from richc import config as cfg
from richc.context import Context
from richc.errors import RichcError
from richc.hookrun import claim, sources
from richc.hookrun.model import Hook, Stage
from richc.procs import is_same_process
from richc.spec import ContainerSpec
from richc.state import HookMatchRecord, State
from richc.store import ContainerDir, write_atomic

if TYPE_CHECKING:  # the runner is imported where hooks run: most starts have none
    from richc.hookrun.runner import StageRun, Target

log = logging.getLogger("richc")

# How long poststart waits for the init to finish booting before running the hooks anyway.
READY_TIMEOUT = 90.0
# Beyond the poststop hooks' own timeouts: richc's callback starting up and reading state.
POSTSTOP_MARGIN = 5.0
CLAIM_FILE = claim.CLAIM_FILE


class HookFailed(RichcError):
    """A prestart or poststart hook failed and the start was undone."""


def match_record(spec: ContainerSpec) -> HookMatchRecord:
    """What OCI ``when`` conditions look at in a spec (the init's command, bind mounts),
    recorded at start: poststop, `hooks list` and `hooks run` then answer the same without
    building the spec, which is the lifecycle's business, not the hooks'."""
    return HookMatchRecord(
        command=spec.argv[0] if spec.argv else "",
        has_bind_mounts=any("bind" in m.options for m in spec.mounts),
    )


def _recorded_match(state: State) -> HookMatchRecord:
    if state.hook_match is not None:
        return state.hook_match
    # Never started: the init's own command, and no bind mounts yet (lxcfs views are
    # bound from the first start on).
    from richc.spec import INIT_ARGV

    try:
        command = INIT_ARGV[cfg.Init(state.init)][0]
    except (KeyError, ValueError):
        command = "/sbin/init"
    return HookMatchRecord(command=command, has_bind_mounts=False)


def hooks_for(
    ctx: Context,
    config: cfg.ContainerConfig,
    state: State,
    stage: Stage,
    spec: ContainerSpec | None = None,
) -> list[Hook]:
    recorded = match_record(spec) if spec is not None else _recorded_match(state)
    match = sources.match_info(config, state.init, recorded.command, recorded.has_bind_mounts)
    return sources.resolve(ctx.paths, config, stage, match)


def target(
    ctx: Context,
    cdir: ContainerDir,
    config: cfg.ContainerConfig,
    state: State,
    stage: Stage,
    pid: int | None = None,
) -> Target:
    from richc.hookrun.runner import Target

    return Target(
        name=cdir.name,
        stage=stage,
        rootfs=cdir.rootfs,
        config_file=cdir.config_file,
        bundle=cdir.bundle,
        runtime=state.runtime,
        root=ctx.paths.root,
        log_dir=cdir.log_dir,
        init=state.init,
        pid=pid,
        annotations=sources.container_annotations(config, state.init),
    )


def run_stage(
    ctx: Context,
    cdir: ContainerDir,
    config: cfg.ContainerConfig,
    state: State,
    stage: Stage,
    *,
    pid: int | None = None,
    spec: ContainerSpec | None = None,
    hooks: list[Hook] | None = None,
) -> StageRun:
    """Run *stage*'s hooks (*hooks*, when the caller resolved them already) and log failures."""
    from richc.hookrun.runner import run_hooks

    if hooks is None:
        hooks = hooks_for(ctx, config, state, stage, spec)
    outcome = run_hooks(hooks, target(ctx, cdir, config, state, stage, pid))
    for result in outcome.failures:
        level = logging.ERROR if stage.blocks() and result.blocking_failure else logging.WARNING
        log.log(level, "%s hook %s", stage.value, result.describe())
    return outcome


def _raise_failed(cdir: ContainerDir, outcome: StageRun, what: str) -> None:
    first = outcome.blocking_failures[0]
    raise HookFailed(
        f"{outcome.stage.value} hook {first.describe()}; {what}",
        hint=f"see {cdir.log_dir / 'hooks.log'} (`richc logs --hooks {cdir.name}`)",
    )


def prestart(
    ctx: Context,
    cdir: ContainerDir,
    config: cfg.ContainerConfig,
    state: State,
    spec: ContainerSpec | None,
) -> None:
    """Run before the runtime starts init: the rootfs is in place, no init runs yet."""
    hooks = hooks_for(ctx, config, state, Stage.prestart, spec)
    if not hooks:
        return  # the usual start: nothing to run, and no runner to load
    outcome = run_stage(ctx, cdir, config, state, Stage.prestart, spec=spec, hooks=hooks)
    if outcome.blocking_failures:
        # Let poststop hooks undo what the prestart hooks before the failure did.
        poststop_once(ctx, cdir, config, state, spec=spec)
        _raise_failed(cdir, outcome, f"{cdir.name} was not started")


def poststart(
    ctx: Context,
    cdir: ContainerDir,
    config: cfg.ContainerConfig,
    state: State,
    spec: ContainerSpec,
    pid: int,
) -> None:
    """Wait for the init to be ready, then run the poststart hooks (raise HookFailed)."""
    hooks = hooks_for(ctx, config, state, Stage.poststart, spec)
    if not hooks:
        return  # nothing to wait for: a start without poststart hooks returns at once
    from richc.hookrun.ready import wait_ready  # inittab parsing, netlink: only with hooks
    from richc.hookrun.runner import run_hooks

    ready = wait_ready(state.init, pid, READY_TIMEOUT)
    level = logging.DEBUG if ready.ready else logging.WARNING
    log.log(level, "%s: %s after %.2f s", cdir.name, ready.how, ready.seconds)
    outcome = run_hooks(hooks, target(ctx, cdir, config, state, Stage.poststart, pid))
    for result in outcome.failures:
        level = logging.ERROR if result.blocking_failure else logging.WARNING
        log.log(level, "poststart hook %s", result.describe())
    if outcome.blocking_failures:
        _raise_failed(cdir, outcome, f"{cdir.name} was stopped")


def prestop(
    ctx: Context,
    cdir: ContainerDir,
    config: cfg.ContainerConfig,
    state: State,
    spec: ContainerSpec | None,
    pid: int | None,
) -> StageRun:
    """Run before the halt signal; failures are reported and never block the stop."""
    return run_stage(ctx, cdir, config, state, Stage.prestop, pid=pid, spec=spec)


def poststop_budget(
    ctx: Context, config: cfg.ContainerConfig, state: State, spec: ContainerSpec | None
) -> float:
    """Seconds a runtime's own poststop callback may take (0 without hooks)."""
    hooks = hooks_for(ctx, config, state, Stage.poststop, spec)
    return sum(h.timeout for h in hooks) + POSTSTOP_MARGIN if hooks else 0.0


def _read_claim(cdir: ContainerDir) -> dict[str, Any] | None:
    return cast("dict[str, Any] | None", claim.read(cdir.run_dir))


def _wait_claim(cdir: ContainerDir, seconds: float, *, appear: float = 0.0) -> bool:
    """Wait up to *seconds* for a running poststop claim to finish; first up to *appear*
    seconds for one to show up at all. True if the poststop hooks are done (or were never
    going to run here), False if they were still running at the deadline.

    LXC reports a container STOPPED to a state query as soon as its init is gone, while its
    monitor still runs the post-stop callback; only this file says when that is over.
    """
    started = time.monotonic()
    while True:
        record = _read_claim(cdir)
        elapsed = time.monotonic() - started
        if record is None and elapsed >= appear:
            return True
        if record is not None and not claim.in_progress(record):
            return True
        if elapsed >= seconds:
            return False
        time.sleep(0.01)  # a read of a small file: polling finely costs little


def wait_poststop(
    ctx: Context,
    cdir: ContainerDir,
    config: cfg.ContainerConfig,
    state: State,
    spec: ContainerSpec | None,
    init_pid: int | None,
    *,
    claimed: bool = False,
) -> bool:
    """After a shutdown that timed out: True if the init did exit (a clean stop) and the
    runtime's poststop callback then finished within the hooks' budget. *claimed*: the
    caller runs the hooks itself, so the callback has none to finish."""
    if init_pid is None or is_same_process(
        init_pid, state.init_run.pid_start_time if state.init_run else None
    ):
        return False  # the init itself is still there: the shutdown really failed
    if claimed:
        return True
    budget = poststop_budget(ctx, config, state, spec)
    return _wait_claim(cdir, budget, appear=min(budget, POSTSTOP_MARGIN))


def arm_poststop(
    ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
) -> None:
    """Before a start: let a previous run's poststop finish, then mark this run's as due."""
    if not _wait_claim(cdir, poststop_budget(ctx, config, state, None)):
        log.warning("%s: the previous run's poststop hooks are still running", cdir.name)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(cdir.run_dir / CLAIM_FILE)


def claim_poststop(cdir: ContainerDir) -> bool:
    """Claim this run's poststop hooks for the caller, which will run them by
    :func:`poststop_once` with ``claimed=True``; False if someone else holds the claim."""
    return claim.take(cdir.run_dir)


def poststop_once(
    ctx: Context,
    cdir: ContainerDir,
    config: cfg.ContainerConfig,
    state: State,
    *,
    spec: ContainerSpec | None = None,
    claimed: bool = False,
) -> StageRun | None:
    """Run the poststop hooks unless someone already did for this run; None if so.
    *claimed*: the caller holds the claim already (:func:`claim_poststop`)."""
    if not claimed and not claim.take(cdir.run_dir):
        return None
    outcome = run_stage(ctx, cdir, config, state, Stage.poststop, spec=spec)
    record = {"status": "done", "results": [r.to_dict() for r in outcome.results]}
    write_atomic(cdir.run_dir / CLAIM_FILE, json.dumps(record) + "\n")
    return outcome


def report_poststop(cdir: ContainerDir) -> list[str]:
    """Failures the runtime's poststop callback recorded (for `richc stop` to repeat)."""
    record = _read_claim(cdir) or {}
    return [
        f"{r['hook']} failed: {r['error'] or 'exit status ' + str(r['returncode'])}"
        for r in record.get("results", [])
        if not r.get("ok")
    ]


def after_stop(
    ctx: Context,
    cdir: ContainerDir,
    config: cfg.ContainerConfig,
    state: State,
    spec: ContainerSpec | None,
    *,
    claimed: bool = False,
) -> None:
    """After richc saw the container stop: run poststop if the runtime did not, or wait for
    the runtime's run to finish and report its failures."""
    if poststop_once(ctx, cdir, config, state, spec=spec, claimed=claimed) is not None:
        return
    if not _wait_claim(cdir, poststop_budget(ctx, config, state, spec)):
        log.warning("%s: poststop hooks still running after their timeouts", cdir.name)
    for failure in report_poststop(cdir):
        log.warning("poststop hook %s", failure)
