"""The lifecycle's side of hooks: poststop exactly once, the runtime callback, readiness."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from richc import config as cfg
from richc.context import Context
from richc.hookrun import __main__ as callback
from richc.hookrun import claim, ready, sources, stages
from richc.hookrun.model import Stage
from richc.paths import HostPaths
from richc.state import InitRecord, State
from richc.store import ContainerDir


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Context:
    monkeypatch.setattr(sources, "builtin_dir", lambda: tmp_path / "builtin")
    return Context(paths=HostPaths.from_root(tmp_path / "root"))


def make_container(ctx: Context, hooks: dict[str, object] | None = None) -> ContainerDir:
    cdir = ctx.store.reserve("web01")
    cdir.save_config(cfg.from_dict({"name": "web01", "hooks": hooks or {}}))
    cdir.save_state(State(name="web01", status="created", runtime="lxc", init="busybox"))
    return cdir


def counting_hook(tmp_path: Path, stage: str, body: str = "") -> Path:
    hooks = tmp_path / "root/etc/richc/hooks.d" / stage
    hooks.mkdir(parents=True, exist_ok=True)
    path = hooks / "10-count"
    path.write_text(f"#!/bin/sh\necho {stage} >> {tmp_path}/count\n{body}")
    path.chmod(0o755)
    return tmp_path / "count"


def test_poststop_runs_once_per_run(ctx: Context, tmp_path: Path) -> None:
    count = counting_hook(tmp_path, "poststop")
    cdir = make_container(ctx)
    config, state = cdir.load_config(), cdir.load_state()
    stages.arm_poststop(ctx, cdir, cdir.load_config(), cdir.load_state())
    assert stages.poststop_once(ctx, cdir, config, state) is not None
    assert stages.poststop_once(ctx, cdir, config, state) is None  # already claimed
    stages.after_stop(ctx, cdir, config, state, None)  # richc stop after the runtime did it
    assert count.read_text().split() == ["poststop"]
    stages.arm_poststop(ctx, cdir, cdir.load_config(), cdir.load_state())  # the next start
    stages.after_stop(ctx, cdir, config, state, None)
    assert count.read_text().split() == ["poststop", "poststop"]


def test_runtime_callback_runs_poststop_and_records_failures(
    ctx: Context, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    counting_hook(tmp_path, "poststop", "echo broken >&2; exit 4\n")
    cdir = make_container(ctx)
    stages.arm_poststop(ctx, cdir, cdir.load_config(), cdir.load_state())
    assert (
        callback.main(["--root", str(ctx.paths.root), "poststop", "web01", "lxc", "post-stop"]) == 0
    )
    record = json.loads((cdir.run_dir / stages.CLAIM_FILE).read_text())
    assert record["status"] == "done"
    assert [(r["hook"], r["returncode"]) for r in record["results"]] == [("hooks.d/10-count", 4)]
    # richc stop, arriving after the monitor, only repeats the failure.
    stages.after_stop(ctx, cdir, cdir.load_config(), cdir.load_state(), None)
    assert "poststop hook hooks.d/10-count failed: exit status 4" in caplog.text
    assert (tmp_path / "count").read_text().split() == ["poststop"]


def test_callback_skips_an_in_container_reboot(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = counting_hook(tmp_path, "poststop")
    make_container(ctx)
    monkeypatch.setenv("LXC_TARGET", "reboot")
    assert callback.main(["--root", str(ctx.paths.root), "poststop", "web01"]) == 0
    assert not count.exists()


def test_callback_usage_error() -> None:
    assert callback.main(["poststop"]) == 2


def test_callback_command_is_the_script_with_root_claim_and_interpreter(ctx: Context) -> None:
    cdir = make_container(ctx)
    argv = shlex.split(claim.callback_command(ctx.paths.root, cdir.run_dir))
    assert argv == [
        "/bin/sh", claim.CALLBACK_SCRIPT, str(ctx.paths.root),
        str(cdir.run_dir / stages.CLAIM_FILE), sys.executable,
    ]  # fmt: skip
    assert Path(claim.CALLBACK_SCRIPT).is_file()


def test_failed_prestart_runs_poststop_to_undo_and_raises(ctx: Context, tmp_path: Path) -> None:
    count = counting_hook(tmp_path, "prestart", "exit 1\n")
    counting_hook(tmp_path, "poststop")
    cdir = make_container(ctx)
    stages.arm_poststop(ctx, cdir, cdir.load_config(), cdir.load_state())
    with pytest.raises(stages.HookFailed) as info:
        stages.prestart(ctx, cdir, cdir.load_config(), cdir.load_state(), spec=None)
    assert "prestart hook hooks.d/10-count failed with exit status 1" in info.value.message
    assert "web01 was not started" in info.value.message
    assert info.value.hint and "hooks.log" in info.value.hint
    assert count.read_text().split() == ["prestart", "poststop"]


def test_poststop_budget_counts_each_hook_timeout(ctx: Context, tmp_path: Path) -> None:
    cdir = make_container(ctx, {"poststop": [{"path": "/bin/true", "timeout": 7}]})
    config, state = cdir.load_config(), cdir.load_state()
    assert stages.poststop_budget(ctx, config, state, None) == 7 + stages.POSTSTOP_MARGIN
    counting_hook(tmp_path, "poststop")
    assert stages.poststop_budget(ctx, config, state, None) == 7 + 30 + stages.POSTSTOP_MARGIN


def test_no_poststop_hooks_no_budget(ctx: Context) -> None:
    cdir = make_container(ctx)
    assert stages.poststop_budget(ctx, cdir.load_config(), cdir.load_state(), None) == 0


def test_real_builtin_stop_record(tmp_path: Path) -> None:
    ctx = Context(paths=HostPaths.from_root(tmp_path / "root"))
    cdir = make_container(ctx)
    stages.arm_poststop(ctx, cdir, cdir.load_config(), cdir.load_state())
    outcome = stages.poststop_once(ctx, cdir, cdir.load_config(), cdir.load_state())
    assert outcome is not None and [r.hook.label for r in outcome.results] == [
        "builtin/50-stop-record"
    ]
    assert outcome.results[0].ok, (cdir.log_dir / "hooks.log").read_text()
    assert (cdir.log_dir / "stops.log").read_text().endswith(" web01 stopped\n")


def test_inittab_actions_busybox_and_sysv() -> None:
    text = """
# comment
::sysinit:/etc/init.d/rcS
console::respawn:-/sbin/getty -L 0 console vt100
si::sysinit:/etc/init.d/rcS
l2:2:wait:/etc/init.d/rc 2
1:2345:respawn:/sbin/getty 38400 tty1
bad line
"""
    actions = ready.inittab_actions(text)
    assert actions["sysinit"] == ["/etc/init.d/rcS", "/etc/init.d/rcS"]
    assert actions["wait"] == ["/etc/init.d/rc 2"]
    assert actions["respawn"] == ["/sbin/getty -L 0 console vt100", "/sbin/getty 38400 tty1"]


def test_init_without_readiness_signal_is_ready_while_alive() -> None:
    result = ready.wait_ready(cfg.Init.dumb_init, os.getpid(), 1)
    assert result.ready and "no readiness signal" in result.how
    assert not ready.wait_ready("dumb-init", 2**22 + 12345, 1).ready


def test_stage_blocking_policy() -> None:
    assert [s.value for s in Stage if s.blocks()] == ["prestart", "poststart"]


def lxc_callback_args(ctx: Context, cdir: ContainerDir) -> list[str]:
    """What the callback module gets when LXC's monitor runs the callback command (with
    NAME lxc post-stop appended) and the script goes on to python: see test_callback_script."""
    claim_file = str(cdir.run_dir / stages.CLAIM_FILE)
    return [
        "--root", str(ctx.paths.root), "--claim", claim_file, "poststop",
        cdir.name, "lxc", "post-stop",
    ]  # fmt: skip


def write_claim(cdir: ContainerDir, record: dict[str, object]) -> None:
    cdir.run_dir.mkdir(parents=True, exist_ok=True)
    (cdir.run_dir / stages.CLAIM_FILE).write_text(json.dumps(record))


def test_wait_claim_waits_for_a_live_runner_only(ctx: Context) -> None:
    cdir = make_container(ctx)
    assert stages._wait_claim(cdir, 0.2)  # no claim, no grace: nothing to wait for
    write_claim(cdir, {"status": "running", "pid": os.getpid()})  # alive: still at work
    assert not stages._wait_claim(cdir, 0.2)
    write_claim(cdir, {"status": "running", "pid": 2**22 + 12345})  # its runner died
    assert stages._wait_claim(cdir, 0.2)
    write_claim(cdir, {"status": "done", "results": []})
    assert stages._wait_claim(cdir, 0.2)


def test_wait_poststop_refuses_while_the_init_lives(ctx: Context) -> None:
    cdir = make_container(ctx)
    state = cdir.load_state()
    state.init_run = InitRecord(pid=os.getpid(), pid_start_time=None)
    assert not stages.wait_poststop(ctx, cdir, cdir.load_config(), state, None, os.getpid())
    assert not stages.wait_poststop(ctx, cdir, cdir.load_config(), state, None, None)


SYSV_INITTAB = """
si::sysinit:/etc/init.d/rcS
l2:2:wait:/etc/init.d/rc 2
co:2345:respawn:/sbin/getty --noclear 38400 console
"""


def test_sysv_runlevel_alone_is_not_ready_until_rc_ran() -> None:
    work = ready._LevelWork(ready.inittab_entries(SYSV_INITTAB))
    # init wrote runlevel 2 to utmp but has not spawned `rc 2` yet.
    assert not work.done("2", [], booting=False)
    # rcS is not `rc 2`, even though its path starts the same.
    assert not work.done("2", ["/bin/sh /etc/init.d/rcS"], booting=True)
    assert not work.done("2", ["/bin/sh /etc/init.d/rc 2"], booting=True)
    assert work.done("2", [], booting=False)


def test_sysv_level_getty_running_means_rc_is_done() -> None:
    work = ready._LevelWork(ready.inittab_entries(SYSV_INITTAB))
    assert not work.done(None, ["/sbin/getty --noclear 38400 console"], booting=False)
    assert work.done("2", ["/sbin/getty --noclear 38400 console"], booting=False)


def test_sysv_level_without_visible_work_is_ready_after_a_quiet_spell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = ready._LevelWork(ready.inittab_entries("id:3:initdefault:\n"))
    monkeypatch.setattr(ready, "LEVEL_QUIET_SECONDS", 0.0)
    assert not work.done("3", [], booting=True)
    assert work.done("3", [], booting=False)


def test_callback_leaves_claimed_hooks_to_the_richc_stop_that_claimed_them(
    ctx: Context, tmp_path: Path
) -> None:
    count = counting_hook(tmp_path, "poststop")
    cdir = make_container(ctx)
    config, state = cdir.load_config(), cdir.load_state()
    stages.arm_poststop(ctx, cdir, config, state)
    assert stages.claim_poststop(cdir)  # richc stop, before the halt signal
    argv = lxc_callback_args(ctx, cdir)
    assert callback.main(argv) == 0
    # A config rendered by an older richc has no --claim: the same answer, the slow way.
    assert callback.main(["--root", str(ctx.paths.root), "poststop", "web01"]) == 0
    assert not count.exists(), "the callback ran hooks that richc stop had claimed"
    stages.after_stop(ctx, cdir, config, state, None, claimed=True)
    assert count.read_text().split() == ["poststop"]
    assert json.loads((cdir.run_dir / stages.CLAIM_FILE).read_text())["status"] == "done"


def test_callback_takes_over_from_a_richc_stop_that_died(ctx: Context, tmp_path: Path) -> None:
    count = counting_hook(tmp_path, "poststop")
    cdir = make_container(ctx)
    stages.arm_poststop(ctx, cdir, cdir.load_config(), cdir.load_state())
    write_claim(cdir, {"status": "running", "pid": 2**22 + 12345, "start_time": 1})
    argv = lxc_callback_args(ctx, cdir)
    assert callback.main(argv) == 0
    assert count.read_text().split() == ["poststop"]


def test_a_claim_by_a_reused_pid_is_an_orphan(ctx: Context) -> None:
    # This very pid, but a start time it never had: the claimer died and the pid moved on.
    record = {"status": "running", "pid": os.getpid(), "start_time": 1}
    assert claim.orphaned(record) and not claim.in_progress(record)
    assert not claim.orphaned({"status": "done", "results": []})


def test_the_callback_command_is_built_without_the_hook_machinery() -> None:
    # LXC's config carries it; make_spec builds it on every start and stop.
    code = (
        "import sys; from richc.hookrun import claim; claim.callback_command('/', '/run/x'); "
        "print(' '.join(m for m in sys.modules if m.startswith('richc.')))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(out.stdout.split()) <= {
        "richc",
        "richc.hookrun",
        "richc.hookrun.claim",
        "richc.procs",
    }
