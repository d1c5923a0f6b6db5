"""Running hooks: stdin state, environment, timeout, process groups, log tagging, policy.

These run tiny /bin/sh hooks as local processes; no container or root is needed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from richc.hookrun import hooklog, runner
from richc.hookrun.model import Hook, Source, Stage


def script(tmp_path: Path, name: str, body: str) -> Path:
    directory = tmp_path / "hooks"
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def hook(path: Path, **kw: object) -> Hook:
    return Hook(name=path.name, source=Source.hooks_d, path=path, argv=(str(path),), **kw)  # type: ignore[arg-type]


def target(tmp_path: Path, stage: Stage = Stage.poststart, pid: int | None = 4242) -> runner.Target:
    return runner.Target(
        name="web01",
        stage=stage,
        rootfs=tmp_path / "rootfs",
        config_file=tmp_path / "config.yaml",
        bundle=tmp_path,
        runtime="lxc",
        root=tmp_path,
        log_dir=tmp_path / "log",
        init="busybox",
        pid=pid,
        annotations=(("io.richc.name", "web01"),),
    )


def read_log(tmp_path: Path) -> str:
    return (tmp_path / "log" / "hooks.log").read_text()


def test_hook_gets_oci_state_on_stdin_and_richc_env(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    path = script(tmp_path, "10-seen", f"cat > {out}.json; env > {out}.env\n")
    h = hook(path, env=(("OWN", "value"), ("RICHC_STAGE", "overridden-by-hook")))
    outcome = runner.run_hooks([h], target(tmp_path))
    assert [r.ok for r in outcome.results] == [True]
    state = json.loads(Path(f"{out}.json").read_text())
    assert state == {
        "ociVersion": runner.OCI_VERSION,
        "id": "web01",
        "status": "running",
        "pid": 4242,
        "bundle": str(tmp_path),
        "annotations": {"io.richc.name": "web01"},
    }
    env = dict(line.split("=", 1) for line in Path(f"{out}.env").read_text().splitlines())
    assert env["RICHC_NAME"] == "web01"
    assert env["RICHC_PID"] == "4242"
    assert env["RICHC_ROOTFS"] == str(tmp_path / "rootfs")
    assert env["RICHC_CONFIG"] == str(tmp_path / "config.yaml")
    assert env["RICHC_RUNTIME"] == "lxc"
    assert env["RICHC_ROOT"] == str(tmp_path)
    assert env["OWN"] == "value"
    assert env["RICHC_STAGE"] == "overridden-by-hook"  # the hook's own env wins
    assert "/usr/bin" in env["PATH"]
    # Nothing leaks from richc's own environment.
    assert "PYTEST_CURRENT_TEST" not in env


def test_poststop_has_no_pid(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    path = script(
        tmp_path, "10-seen", f'cat > {out}.json; echo "${{RICHC_PID-unset}}" > {out}.pid\n'
    )
    runner.run_hooks([hook(path)], target(tmp_path, Stage.poststop, pid=None))
    state = json.loads(Path(f"{out}.json").read_text())
    assert state["status"] == "stopped" and "pid" not in state
    assert Path(f"{out}.pid").read_text().strip() == "unset"


def test_output_is_logged_tagged_with_container_stage_and_hook(tmp_path: Path) -> None:
    path = script(tmp_path, "20-talk", "echo to-stdout; echo to-stderr >&2; exit 3\n")
    outcome = runner.run_hooks([hook(path)], target(tmp_path))
    assert outcome.results[0].returncode == 3
    lines = read_log(tmp_path).splitlines()
    tagged = [
        line for line in lines if "container=web01 stage=poststart hook=hooks.d/20-talk" in line
    ]
    assert len(tagged) == len(lines) >= 4
    assert any(line.endswith("| to-stdout") for line in lines)
    assert any(line.endswith("| to-stderr") for line in lines)
    assert "failed with exit status 3" in lines[-1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent, the hook's shell, was killed).
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] != "Z"


def assert_dies(pid: int, failure: str) -> None:
    """Wait up to 5 s for *pid* to die; kill it ourselves if it does not, then fail."""
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert not _alive(pid), failure
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    path = script(tmp_path, "30-slow", f"sleep 600 & echo $! > {pidfile}; wait\n")
    outcome = runner.run_hooks([hook(path, timeout=0.5)], target(tmp_path))
    result = outcome.results[0]
    assert result.timed_out and not result.ok
    assert "timed out after 0.5 s" in result.error
    assert_dies(int(pidfile.read_text()), "the hook's `sleep 600` survived its timeout")
    assert "timed out" in read_log(tmp_path)


def test_timeout_kills_a_child_that_left_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    path = script(
        tmp_path,
        "31-daemonizes",
        f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 600' </dev/null >/dev/null 2>&1 &\n"
        "sleep 600\n",
    )
    outcome = runner.run_hooks([hook(path, timeout=0.5)], target(tmp_path))
    assert outcome.results[0].timed_out
    assert_dies(int(pidfile.read_text()), "a setsid child of a timed-out hook survived")


def test_background_child_does_not_hold_up_a_successful_hook(tmp_path: Path) -> None:
    # Output goes to a file, not a pipe: a daemon the hook leaves behind cannot make richc
    # wait for an end of file.
    pidfile = tmp_path / "child.pid"
    path = script(
        tmp_path, "40-daemon", f"setsid sleep 600 >/dev/null 2>&1 & echo $! > {pidfile}\n"
    )
    outcome = runner.run_hooks([hook(path, timeout=30)], target(tmp_path))
    child = int(pidfile.read_text())
    try:
        assert outcome.results[0].ok and outcome.results[0].duration < 30
    finally:
        os.kill(child, signal.SIGKILL)


def test_blocking_stage_stops_at_first_failure_but_warn_continues(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    ok = script(tmp_path, "10-ok", f"echo ok >> {ran}\n")
    warn = script(tmp_path, "20-warn", f"echo warn >> {ran}; exit 1\n")
    fail = script(tmp_path, "30-fail", f"echo fail >> {ran}; exit 1\n")
    never = script(tmp_path, "40-never", f"echo never >> {ran}\n")
    hooks = [hook(ok), hook(warn, on_failure="warn"), hook(fail), hook(never)]
    outcome = runner.run_hooks(hooks, target(tmp_path, Stage.prestart, pid=None))
    assert ran.read_text().split() == ["ok", "warn", "fail"]
    assert [r.hook.name for r in outcome.blocking_failures] == ["30-fail"]
    assert [r.hook.name for r in outcome.failures] == ["20-warn", "30-fail"]
    assert "not running hooks.d/40-never" in read_log(tmp_path)


def test_non_blocking_stage_runs_every_hook(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    fail = script(tmp_path, "10-fail", f"echo fail >> {ran}; exit 1\n")
    after = script(tmp_path, "20-after", f"echo after >> {ran}\n")
    outcome = runner.run_hooks([hook(fail), hook(after)], target(tmp_path, Stage.prestop))
    assert ran.read_text().split() == ["fail", "after"]
    assert len(outcome.failures) == 1


def test_missing_and_unexecutable_hooks_fail_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "hooks").mkdir()
    missing = tmp_path / "hooks" / "absent"
    plain = tmp_path / "hooks" / "plain"
    plain.write_text("echo\n")
    plain.chmod(0o644)
    outcome = runner.run_hooks([hook(missing), hook(plain)], target(tmp_path, Stage.poststop))
    first, second = outcome.results
    assert first.returncode is None and "cannot be checked" in first.error
    assert second.returncode == 126 and "cannot execute" in second.error


def test_unsafe_hook_is_refused_and_never_runs(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    path = script(tmp_path, "10-open", f"touch {ran}\n")
    path.chmod(0o777)
    outcome = runner.run_hooks([hook(path)], target(tmp_path, Stage.prestart))
    assert not ran.exists()
    result = outcome.results[0]
    assert result.returncode is None and "world-writable" in result.error
    assert f"chmod o-w {path}" in read_log(tmp_path)


def test_broken_hook_counts_as_failed(tmp_path: Path) -> None:
    broken = Hook("bad", Source.oci, tmp_path / "bad.json", ("x",), problem="bad.json: version")
    outcome = runner.run_hooks([broken], target(tmp_path, Stage.prestart))
    assert outcome.blocking_failures and "bad.json: version" in read_log(tmp_path)


def test_oci_hook_runs_path_with_its_own_argv0(tmp_path: Path) -> None:
    out = tmp_path / "argv"
    path = script(tmp_path, "real", f'echo "$0 $*" > {out}\n')
    h = Hook("podman", Source.oci, path, ("custom-name", "prestart"))
    runner.run_hooks([h], target(tmp_path, Stage.prestart))
    assert out.read_text().split()[1:] == ["prestart"]


def test_journal_handler_sends_the_hook_fields() -> None:
    sent: list[tuple[str, dict[str, str]]] = []

    def send(message: str, **fields: str) -> None:
        sent.append((message, fields))

    handler = hooklog.HookJournalHandler(send)
    hooklog.logger.addHandler(handler)
    try:
        hooklog.logger.warning("boom", extra=hooklog.tags("web01", "prestop", "oci/x"))
    finally:
        hooklog.logger.removeHandler(handler)
    assert sent == [
        (
            "boom",
            {
                "PRIORITY": "4",
                "SYSLOG_IDENTIFIER": "richc-hook",
                "RICHC_CONTAINER": "web01",
                "RICHC_STAGE": "prestop",
                "RICHC_HOOK": "oci/x",
            },
        )
    ]


def test_hook_records_carry_the_bound_operation(tmp_path: Path) -> None:
    from richc import log as richc_log

    sent: list[dict[str, str]] = []
    handler = hooklog.HookJournalHandler(lambda message, **fields: sent.append(fields))
    hooklog.logger.addHandler(handler)
    path = script(tmp_path, "40-say", "echo draining\n")
    try:
        with richc_log.fields(container="web01", operation="stop"):
            runner.run_hooks([hook(path)], target(tmp_path, Stage.prestop))
        runner.run_hooks([hook(path)], target(tmp_path, Stage.poststop))  # no operation bound
    finally:
        hooklog.logger.removeHandler(handler)
    assert {f["RICHC_OPERATION"] for f in sent if f["RICHC_STAGE"] == "prestop"} == {"stop"}
    assert not any("RICHC_OPERATION" in f for f in sent if f["RICHC_STAGE"] == "poststop")
    said = [line for line in read_log(tmp_path).splitlines() if line.endswith("| draining")]
    assert " container=web01 stage=prestop hook=hooks.d/40-say operation=stop: " in said[0]
    assert said[1].split(": ", 1)[0].endswith("hook=hooks.d/40-say")


def test_oci_status_per_stage() -> None:
    assert {s.value: s.oci_status() for s in Stage} == {
        "prestart": "creating",
        "poststart": "running",
        "prestop": "running",
        "poststop": "stopped",
    }


def test_shipped_log_lifecycle_example(tmp_path: Path) -> None:
    from richc.datafiles import hooks_dir

    example = hooks_dir() / "examples/log-lifecycle"
    (tmp_path / "var/log/richc").mkdir(parents=True)
    h = Hook("log-lifecycle", Source.hooks_d, example, (str(example),))
    outcome = runner.run_hooks([h], target(tmp_path, Stage.prestop, pid=77))
    assert outcome.results[0].ok, read_log(tmp_path)
    (line,) = (tmp_path / "var/log/richc/lifecycle.log").read_text().splitlines()
    assert " web01 prestop pid=77 state=" in line
    assert json.loads(line.split(" state=", 1)[1])["status"] == "running"


def test_journal_handler_without_systemd_python_is_quiet(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "systemd", None)  # import systemd -> ImportError
    handler = hooklog.HookJournalHandler()
    hooklog.logger.addHandler(handler)
    try:
        hooklog.logger.info("one", extra=hooklog.tags("web01", "prestart"))
        hooklog.logger.info("two", extra=hooklog.tags("web01", "prestart"))
    finally:
        hooklog.logger.removeHandler(handler)
    assert caplog.text.count("systemd-python is missing") == 1
