"""Hooks on real LXC containers: what each stage sees, order, contract, policy and safety.

Every hook here is a small shell script under the test's tmp_path that writes what it saw
into files the test reads afterwards: the user's view of hooks is their side effects.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RichcRunner

pytestmark = pytest.mark.integration

CLK_TCK = os.sysconf("SC_CLK_TCK")


@pytest.fixture(params=["lxc", "runc"])
def runtime(request: pytest.FixtureRequest) -> str:
    """Every test runs on both runtimes: the hook contract is the same on each."""
    value = str(request.param)
    if value == "runc" and shutil.which("runc") is None:
        pytest.skip("runc is not installed (apt-get install runc)")
    return value


@pytest.fixture
def richc(richc: RichcRunner, runtime: str) -> RichcRunner:
    """conftest's runner, creating every container on this test's runtime."""

    def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if args and args[0] == "create":
            args = ("create", "--runtime", runtime, *args[1:])
        return richc(*args, **kwargs)

    return run


def inspect(richc: RichcRunner, name: str) -> dict[str, Any]:
    data = json.loads(richc("inspect", name).stdout)
    assert isinstance(data, dict)
    return data


def wait_for(what: str, check: Callable[[], object], limit: float = 30.0) -> object:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


def hooks_d(richc_root: Path) -> Path:
    return richc_root / "etc/richc/hooks.d"


def hook_log(richc_root: Path, name: str) -> str:
    path = richc_root / "var/log/richc" / name / "hooks.log"
    return path.read_text() if path.exists() else ""


def running_labels(richc_root: Path, name: str, stage: str) -> list[str]:
    """The hooks that ran at *stage*, in order, from the hook log's "running" lines."""
    out = []
    for line in hook_log(richc_root, name).splitlines():
        if f" stage={stage} " in line and ": running " in line:
            # "hook=NAME[ operation=OP]: running": richc stop tags the hooks it runs itself
            out.append(line.split(" hook=", 1)[1].split(":", 1)[0].split(" ", 1)[0])
    return out


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def start_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[19]) / CLK_TCK


def test_each_stage_runs_at_its_moment(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    d = hooks_d(richc_root)
    # prestart: the rootfs is there, no init yet. It lingers a moment so that an init that
    # started alongside it would be caught by the start-time comparison below.
    script(
        d / "prestart/10-see",
        f"""
test -x "$RICHC_ROOTFS/bin/busybox" && echo rootfs-ok > {out}/prestart.rootfs
echo "${{RICHC_PID-none}}" > {out}/prestart.pid
echo "written by prestart" > "$RICHC_ROOTFS/prestart-was-here"
sleep 0.3
cut -d' ' -f1 /proc/uptime > {out}/prestart.end
""",
    )
    script(
        d / "poststart/10-see",
        f"""
echo "$RICHC_PID" > {out}/poststart.pid
cat /proc/$RICHC_PID/comm > {out}/poststart.comm
for c in $(cat /proc/$RICHC_PID/task/*/children); do tr '\\0' ' ' < /proc/$c/cmdline; echo; done \
    > {out}/poststart.children
""",
    )
    script(
        d / "prestop/10-see",
        f"""
cat /proc/$RICHC_PID/comm > {out}/prestop.comm
""",
    )
    script(
        d / "poststop/10-see",
        f"""
old=$(cat {out}/poststart.pid)
if [ -e /proc/$old ]; then echo alive; else echo gone; fi > {out}/poststop.init
cat > {out}/poststop.stdin
""",
    )
    richc("create", name)
    richc("start", name)
    info = inspect(richc, name)
    pid = info["pid"]

    assert (out / "prestart.rootfs").read_text().strip() == "rootfs-ok"
    assert (out / "prestart.pid").read_text().strip() == "none"
    # The init started only after the prestart hook had finished.
    assert start_seconds(pid) >= float((out / "prestart.end").read_text()) - 0.01
    # ... and the rootfs prestart saw is the container's.
    seen = richc("exec", name, "--", "cat", "/prestart-was-here").stdout.strip()
    assert seen == "written by prestart"

    # poststart: a live PID 1, ready (busybox init has started its respawn getty).
    assert int((out / "poststart.pid").read_text()) == pid
    assert (out / "poststart.comm").read_text().strip() == "init"
    assert "getty" in (out / "poststart.children").read_text()

    richc("stop", name)
    assert (out / "prestop.comm").read_text().strip() == "init"  # still running at prestop
    assert (out / "poststop.init").read_text().strip() == "gone"
    assert json.loads((out / "poststop.stdin").read_text())["status"] == "stopped"


def test_order_across_the_four_sources(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    trail = tmp_path / "trail"
    d = hooks_d(richc_root)
    for stage in ("prestart", "poststop"):
        script(d / stage / "20-b", f"echo hooks.d/20-b >> {trail}\n")
        script(d / stage / "10-a", f"echo hooks.d/10-a >> {trail}\n")
    oci_target = script(tmp_path / "oci-hook", f"echo oci >> {trail}\n")
    (d / "50-oci.json").write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "hook": {"path": str(oci_target)},
                "when": {"always": True},
                "stages": ["prestart", "poststop"],
            }
        )
    )
    mine = script(tmp_path / "mine", f"echo container >> {trail}\n")
    richc("create", name, "--hook", f"prestart={mine}", "--hook", f"poststop={mine}")
    richc("start", name)
    richc("stop", name)
    expected = ["hooks.d/10-a", "hooks.d/20-b", "oci", "container"]
    assert lines(trail) == expected * 2
    # The built-in hook runs first (its record is in the container's stops.log).
    assert running_labels(richc_root, name, "poststop") == [
        "builtin/50-stop-record", "hooks.d/10-a", "hooks.d/20-b", "oci/50-oci", "container/mine",
    ]  # fmt: skip
    stops = (richc_root / "var/log/richc" / name / "stops.log").read_text()
    assert stops.endswith(f" {name} stopped\n")
    listed = json.loads(richc("hooks", "list", name, "--format", "json").stdout)
    assert [(r["stage"], r["source"], r["hook"]) for r in listed if r["stage"] == "prestart"] == [
        ("prestart", "hooks.d", "10-a"),
        ("prestart", "hooks.d", "20-b"),
        ("prestart", "oci", "50-oci"),
        ("prestart", "container", "mine"),
    ]


def test_stdin_state_and_environment(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path, runtime: str
) -> None:
    out = tmp_path / "out"
    hook = script(tmp_path / "dump", f"cat > {out}.json; env > {out}.env\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"name: {name}\nhooks:\n  poststart:\n"
        f"    - {{path: {hook}, env: {{OWN: 'mine', RICHC_EXTRA: '1'}}, timeout: 12}}\n"
    )
    richc("create", "--config", str(config), "--start")
    info = inspect(richc, name)
    state = json.loads(Path(f"{out}.json").read_text())
    cdir = richc_root / "var/lib/richc/containers" / name
    assert state == {
        "ociVersion": "1.0.2",
        "id": name,
        "status": "running",
        "pid": info["pid"],
        "bundle": str(cdir),
        "annotations": {
            "io.richc.name": name,
            "io.richc.source": "busybox",
            "io.richc.init": "busybox",
        },
    }
    env = dict(line.split("=", 1) for line in Path(f"{out}.env").read_text().splitlines())
    assert env["RICHC_NAME"] == name
    assert env["RICHC_STAGE"] == "poststart"
    assert env["RICHC_ROOTFS"] == info["rootfs"] == str(cdir / "rootfs")
    assert env["RICHC_PID"] == str(info["pid"])
    assert env["RICHC_CONFIG"] == str(cdir / "config.yaml")
    assert f"name: {name}" in Path(env["RICHC_CONFIG"]).read_text()
    assert env["RICHC_RUNTIME"] == runtime
    assert env["RICHC_ROOT"] == str(richc_root)
    assert env["OWN"] == "mine" and env["RICHC_EXTRA"] == "1"
    assert env["PATH"].startswith("/usr/local/sbin")
    assert "RICHC_ROOT" in env and "PYTEST_CURRENT_TEST" not in env


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_timeout_kills_a_sleep_600_hook(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    pidfile = tmp_path / "sleep.pid"
    hook = script(tmp_path / "slow", f"sleep 600 & echo $! > {pidfile}; wait\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"name: {name}\nhooks:\n  poststart: [{{path: {hook}, timeout: 1, on_failure: warn}}]\n"
    )
    richc("create", "--config", str(config))
    start = richc("start", name)
    sleeper = int(pidfile.read_text())
    try:
        assert _gone(sleeper), "the hook's sleep 600 outlived its timeout"
    finally:
        if not _gone(sleeper):
            os.kill(sleeper, signal.SIGKILL)
    assert "timed out after 1 s" in start.stderr
    assert "timed out after 1 s; its process group was killed" in hook_log(richc_root, name)
    assert inspect(richc, name)["state"] == "running"  # on_failure: warn


def _mounts_under(path: Path) -> list[str]:
    """Mounts below a container directory, but for its rootfs overlay on the shared image
    and (unprivileged) the image's idmapped view below it, which stay mounted from create
    to rm (richc.rootfs.share)."""
    prefix = str(path) + "/"
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        target, fstype = fields[4], fields[fields.index("-") + 1]
        if target == str(path / "rootfs") and fstype == "overlay":
            continue
        if target == str(path / "overlay/lower") and "idmapped" in fields[5].split(","):
            continue
        if target.startswith(prefix):
            out.append(target)
    return out


def test_failing_prestart_leaves_the_container_stopped_and_clean(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    undo = tmp_path / "undo"
    failing = script(hooks_d(richc_root) / "prestart/10-fail", "echo no NFS today >&2; exit 3\n")
    script(hooks_d(richc_root) / "poststop/10-undo", f"echo undone >> {undo}\n")
    richc("create", name)
    start = richc("start", name, check=False)
    assert start.returncode == 1
    assert "prestart hook hooks.d/10-fail failed with exit status 3" in start.stderr
    assert f"{name} was not started" in start.stderr and "hooks.log" in start.stderr
    info = inspect(richc, name)
    # Never started, so "created" (not "stopped"): either way, not running and no init.
    assert info["state"] == "created" and info["pid"] is None
    # Nothing of the container runs and nothing of it is mounted.
    lxc_info = richc("exec", name, "--", "true", check=False)
    assert lxc_info.returncode == 125
    cdir = richc_root / "var/lib/richc/containers" / name
    assert _mounts_under(cdir) == []
    assert "| no NFS today" in hook_log(richc_root, name)
    assert lines(undo) == ["undone"]  # poststop hooks ran to undo earlier prestart work
    failing.unlink()
    richc("start", name)
    assert inspect(richc, name)["state"] == "running"


def _processes_naming(word: str) -> list[str]:
    """Command lines that mention *word* (an LXC monitor, a runc console keeper, an init)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or _gone(int(entry.name)):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if word in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_failed_prestart_leaves_no_background_child_of_the_hook(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    daemon_pidfile = tmp_path / "daemon.pid"
    # One child stays in the hook's process group; one makes a session of its own, as a
    # daemon does, and is found by the cookie in its environment.
    hook = script(
        tmp_path / "half-mount",
        f"sleep 600 & echo $! > {pidfile}\n"
        f"setsid sh -c 'echo $$ > {daemon_pidfile}; exec sleep 601' </dev/null >/dev/null 2>&1 &\n"
        f"while [ ! -s {daemon_pidfile} ]; do sleep 0.05; done\n"
        "exit 3\n",
    )
    richc("create", name, "--hook", f"prestart={hook}")
    start = richc("start", name, check=False)
    children = [int(pidfile.read_text()), int(daemon_pidfile.read_text())]
    try:
        assert start.returncode == 1
        assert "prestart hook container/half-mount failed with exit status 3" in start.stderr
        # The hook's process group is killed with it; an orphan is reaped a moment later.
        for child in children:
            wait_for("the hook's background sleeps to die", lambda c=child: _gone(c), limit=10)
    finally:
        for child in children:
            if not _gone(child):
                os.kill(child, signal.SIGKILL)
    info = inspect(richc, name)
    assert info["state"] == "created" and info["pid"] is None
    assert richc("exec", name, "--", "true", check=False).returncode == 125
    assert _processes_naming(name) == []
    assert _mounts_under(richc_root / "var/lib/richc/containers" / name) == []


def test_failing_poststart_stops_the_container_unless_warn(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    hook = script(tmp_path / "register", "echo registry down >&2; exit 1\n")
    richc("create", name, "--hook", f"poststart={hook}")
    start = richc("start", name, check=False)
    assert start.returncode == 1 and f"{name} was stopped" in start.stderr
    assert inspect(richc, name)["state"] == "stopped"

    other = f"{name}-w"
    config = tmp_path / "w.yaml"
    config.write_text(f"name: {other}\nhooks:\n  poststart: [{{path: {hook}, on_failure: warn}}]\n")
    richc("create", "--config", str(config))
    warn = richc("start", other)
    assert "poststart hook container/register failed" in warn.stderr
    assert inspect(richc, other)["state"] == "running"


def test_prestop_failure_never_blocks_the_stop(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    script(hooks_d(richc_root) / "prestop/10-fail", "exit 9\n")
    script(hooks_d(richc_root) / "poststop/10-fail", "exit 8\n")
    richc("create", name, "--start")
    stop = richc("stop", name)
    assert "prestop hook hooks.d/10-fail failed with exit status 9" in stop.stderr
    # richc stop runs the poststop hooks itself (it claimed them before the halt signal)
    assert "poststop hook hooks.d/10-fail failed with exit status 8" in stop.stderr
    assert inspect(richc, name)["state"] == "stopped"


@pytest.mark.parametrize("how", ["richc-stop", "init-exits", "init-killed"])
def test_poststop_runs_once_however_the_container_stops(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path, how: str
) -> None:
    count = tmp_path / "poststop.count"
    script(hooks_d(richc_root) / "poststop/10-count", f'echo "$RICHC_NAME" >> {count}\n')
    richc("create", name, "--start")
    pid = inspect(richc, name)["pid"]
    if how == "richc-stop":
        richc("stop", name)
    elif how == "init-exits":
        # busybox poweroff inside: init shuts down and exits by itself.
        richc("exec", name, "--", "poweroff", check=False)
    else:
        os.kill(pid, signal.SIGKILL)
    wait_for("the poststop hook", lambda: lines(count))
    wait_for("the container to stop", lambda: inspect(richc, name)["state"] == "stopped")
    assert _gone(pid)
    richc("stop", name)  # richc catching up afterwards must not run poststop again
    assert lines(count) == [name]
    # The next run gets its own poststop.
    richc("start", name)
    richc("stop", name)
    assert lines(count) == [name, name]


def test_a_richc_stop_that_died_leaves_its_poststop_hooks_to_the_runtime(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    count = tmp_path / "poststop.count"
    script(hooks_d(richc_root) / "poststop/10-count", f'echo "$RICHC_NAME" >> {count}\n')
    richc("create", name, "--start")
    pid = inspect(richc, name)["pid"]
    # What a `richc stop` killed after claiming the hooks leaves: a claim by a dead process.
    claim_file = richc_root / "run/richc/containers" / name / "hooks-poststop.json"
    claim_file.parent.mkdir(parents=True, exist_ok=True)
    claim_file.write_text(json.dumps({"status": "running", "pid": 2**22 + 1, "start_time": 1}))
    os.kill(pid, signal.SIGKILL)
    wait_for("the runtime's callback to take the orphaned claim", lambda: lines(count))
    wait_for("the container to stop", lambda: inspect(richc, name)["state"] == "stopped")
    assert json.loads(claim_file.read_text())["status"] == "done"
    richc("stop", name)
    assert lines(count) == [name]


def test_a_podman_style_json_hook_runs(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    target = script(tmp_path / "oci-systemd-hook", f'echo "$1 $2 $HOOK_ENV" >> {seen}\n')
    d = hooks_d(richc_root)
    d.mkdir(parents=True, exist_ok=True)
    (d / "oci-systemd-hook.json").write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "hook": {
                    "path": str(target),
                    "args": ["oci-systemd-hook", "prestart", "extra"],
                    "env": ["HOOK_ENV=from-json"],
                    "timeout": 5,
                },
                "when": {"commands": [".*/init$", ".*/systemd$"]},
                "stages": ["createRuntime", "poststop"],
            },
            indent=2,
        )
    )
    (d / "not-for-us.json").write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "hook": {"path": str(target), "args": ["x", "never"]},
                "when": {"annotations": {"^com\\.example\\.gpu$": "true"}},
                "stages": ["prestart"],
            }
        )
    )
    binds = tmp_path / "binds"
    binds_hook = script(tmp_path / "binds-hook", f"echo $RICHC_STAGE >> {binds}\n")
    (d / "binds.json").write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "hook": {"path": str(binds_hook)},
                "when": {"hasBindMounts": True},  # lxcfs's views are bind mounts
                "stages": ["prestart", "poststop"],
            }
        )
    )
    richc("create", name, "--start")
    richc("stop", name)
    assert lines(seen) == ["prestart extra from-json"] * 2
    assert lines(binds) == ["prestart", "poststop"]  # the same answer at both stages
    validate = richc("hooks", "validate", "--format", "json")
    levels = {Path(f["path"]).name: f["level"] for f in json.loads(validate.stdout)}
    assert levels == {
        "binds.json": "ok",
        "not-for-us.json": "ok",
        "oci-systemd-hook.json": "ok",
        "50-stop-record": "ok",  # the built-in hook is checked too
    }


def test_oci_when_annotations_match_the_containers_own_annotations(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path, runtime: str
) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    target = script(tmp_path / "db-backup-hook", f'cat > {seen}/"$RICHC_NAME.json"\n')
    d = hooks_d(richc_root)
    d.mkdir(parents=True, exist_ok=True)
    (d / "db-backup.json").write_text(
        json.dumps(
            {
                "version": "1.0.0",
                "hook": {"path": str(target)},
                "when": {"annotations": {"com.example.role": "^db$"}},
                "stages": ["prestart"],
            }
        )
    )
    db, plain, near = name, f"{name}-p", f"{name}-n"
    richc("create", db, "--annotation", "com.example.role=db", "--annotation", "tier=gold")
    richc("create", plain)
    richc("create", near, "--annotation", "com.example.role=dbx")  # the value regex is anchored
    for each in (db, plain, near):
        richc("start", each)
    assert sorted(p.name for p in seen.iterdir()) == [f"{db}.json"]
    state = json.loads((seen / f"{db}.json").read_text())  # the OCI state on its stdin
    assert state["id"] == db
    assert state["annotations"]["com.example.role"] == "db"
    assert state["annotations"]["tier"] == "gold"
    assert state["annotations"]["io.richc.name"] == db
    info = inspect(richc, db)
    assert info["annotations"] == {"com.example.role": "db", "tier": "gold"}
    assert inspect(richc, plain)["annotations"] == {}
    assert (
        "annotations:\n  com.example.role: db\n"
        in (richc_root / "var/lib/richc/containers" / db / "config.yaml").read_text()
    )
    if runtime == "runc":
        bundle = json.loads(
            (richc_root / "var/lib/richc/containers" / db / "config.json").read_text()
        )
        assert bundle["annotations"]["com.example.role"] == "db"
        assert bundle["annotations"]["org.richc.name"] == db

    def oci_hooks(container: str) -> list[str]:
        rows = json.loads(richc("hooks", "list", container, "--format", "json").stdout)
        return [r["stage"] for r in rows if r["source"] == "oci"]

    assert (oci_hooks(db), oci_hooks(plain)) == (["prestart"], [])
    bad = richc("create", f"{name}-b", "--annotation", "io.richc.name=other", check=False)
    assert bad.returncode == 1
    assert "error: annotations.io.richc.name: 'other': reserved for richc's own" in bad.stderr


def test_unsafe_hooks_are_refused(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    open_hook = script(hooks_d(richc_root) / "prestart/10-open", f"touch {ran}\n", mode=0o777)
    richc("create", name)
    start = richc("start", name, check=False)
    assert start.returncode == 1 and not ran.exists()
    assert f"refusing hook {open_hook}: it is world-writable" in start.stderr
    assert f"chmod o-w {open_hook}" in hook_log(richc_root, name)
    validate = richc("hooks", "validate", check=False)
    assert validate.returncode == 1 and f"chmod o-w {open_hook}" in validate.stdout
    open_hook.unlink()

    shared = tmp_path / "shared"
    hook = script(shared / "hook", f"touch {ran}\n")
    shared.chmod(0o777)  # anyone could swap the file
    other = f"{name}-d"
    richc("create", other, "--hook", f"prestart={hook}")
    refused = richc("start", other, check=False)
    assert refused.returncode == 1 and not ran.exists()
    assert f"its directory {shared} is world-writable" in refused.stderr

    os.chown(hook, 65534, -1)
    shared.chmod(0o755)
    not_root = richc("start", other, check=False)
    assert not_root.returncode == 1 and "owned by uid 65534, not root" in not_root.stderr
    os.chown(hook, 0, -1)
    richc("start", other)
    assert ran.exists()


def test_hooks_run_by_hand_and_list(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    script(
        hooks_d(richc_root) / "poststart/10-pid",
        f'echo "$RICHC_PID" >> {seen}; echo "said $RICHC_STAGE"\n',
    )
    script(hooks_d(richc_root) / "poststart/20-off", "exit 1\n", mode=0o644)  # disabled
    richc("create", name, "--start")
    pid = inspect(richc, name)["pid"]
    run = richc("hooks", "run", name, "poststart", "--format", "json")
    assert [r["hook"] for r in json.loads(run.stdout)] == ["hooks.d/10-pid"]
    assert "hooks.d/10-pid: said poststart" in run.stderr
    assert lines(seen) == [str(pid), str(pid)]
    table = richc("hooks", "list").stdout
    assert "(20-off)" in table and "not executable" in table
    assert "builtin" in table and "50-stop-record" in table
    bad = richc("hooks", "run", name, "prestrat", check=False)
    assert bad.returncode == 1 and "unknown hook stage" in bad.stderr


def test_bind_host_dir_example_mounts_before_init_and_releases_after(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    from richc.datafiles import hooks_dir

    example = hooks_dir() / "examples/bind-host-dir"
    share = tmp_path / "share"
    share.mkdir()
    (share / "hello").write_text("from the host\n")
    config = tmp_path / "c.yaml"
    ref = f"{{path: {example}, args: [{share}, /mnt/share]}}"
    config.write_text(f"name: {name}\nhooks:\n  prestart: [{ref}]\n  poststop: [{ref}]\n")
    richc("create", "--config", str(config), "--start")
    inside = richc("exec", name, "--", "cat", "/mnt/share/hello").stdout
    assert inside == "from the host\n"
    cdir = richc_root / "var/lib/richc/containers" / name
    assert _mounts_under(cdir) != []
    richc("stop", name)
    assert _mounts_under(cdir) == []


def test_slow_poststop_hook_does_not_turn_a_clean_stop_into_a_kill(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    done = tmp_path / "done"
    # busybox init takes about 2 s to shut down; the hook keeps the runtime busy well past
    # the stop timeout after that.
    script(hooks_d(richc_root) / "poststop/10-slow", f"sleep 6; echo done > {done}\n")
    richc("create", name, "--start")
    stop = richc("stop", name, "--timeout", "4")
    assert "killed" not in stop.stderr and "did not shut down" not in stop.stderr, stop.stderr
    assert lines(done) == ["done"]  # it finished before `richc stop` returned
    assert inspect(richc, name)["state"] == "stopped"


def test_a_start_right_after_a_crash_waits_for_the_old_poststop(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    trail = tmp_path / "trail"
    script(
        hooks_d(richc_root) / "poststop/10-slow",
        f"echo begin >> {trail}; sleep 2; echo end >> {trail}\n",
    )
    script(hooks_d(richc_root) / "prestart/10-mark", f"echo prestart >> {trail}\n")
    richc("create", name, "--start")
    os.kill(inspect(richc, name)["pid"], signal.SIGKILL)
    wait_for("the poststop hook to begin", lambda: "begin" in lines(trail))
    richc("start", name)  # while the old run's poststop is still at work
    richc("stop", name)
    assert lines(trail) == ["prestart", "begin", "end", "prestart", "begin", "end"]


def test_a_failed_runtime_start_runs_poststop_once(
    richc: RichcRunner, richc_root: Path, name: str, tmp_path: Path
) -> None:
    trail = tmp_path / "trail"
    script(hooks_d(richc_root) / "prestart/10-mount", f"echo prestart >> {trail}\n")
    script(hooks_d(richc_root) / "poststop/10-umount", f"echo poststop >> {trail}\n")
    richc("create", name)
    init = richc_root / "var/lib/richc/containers" / name / "rootfs/sbin/init"
    init.unlink()  # the runtime cannot exec the init
    start = richc("start", name, check=False)
    assert start.returncode == 1
    wait_for("the poststop hook", lambda: "poststop" in lines(trail))
    time.sleep(1)  # a second poststop, if there were one, would have shown up by now
    assert lines(trail) == ["prestart", "poststop"]
