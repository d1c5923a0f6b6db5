"""The foundation's lifecycle on real containers, checked from inside them, on each runtime
(lxc and runc): every container a test creates is created on the test's runtime."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RICHC, RichcRunner, unique_name

pytestmark = pytest.mark.integration

INSPECT_FIELDS = {
    "name", "state", "runtime", "init", "pid", "hostname", "rootfs", "source", "limits",
    "disk", "lxcfs", "env", "hooks", "unit", "created_at", "started_at",
}  # fmt: skip


@pytest.fixture(params=["lxc", "runc"])
def runtime(request: pytest.FixtureRequest) -> str:
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


def test_full_lifecycle_with_busybox_init_as_pid1(richc: RichcRunner, name: str) -> None:
    richc("create", name, "--memory", "256M", "--env", "GREETING=hello world")
    assert inspect(richc, name)["state"] == "created"

    richc("start", name)
    info = inspect(richc, name)
    assert info["state"] == "running"
    assert isinstance(info["pid"], int) and Path(f"/proc/{info['pid']}").exists()

    ps = richc("exec", name, "--", "ps").stdout.splitlines()
    pid1 = next(line.split() for line in ps[1:] if line.split()[0] == "1")
    assert pid1[-1] == "init", ps
    assert richc("exec", name, "--", "hostname").stdout.strip() == name
    assert richc("exec", name, "--", "cat", "/proc/1/comm").stdout.strip() == "init"
    greeting = richc("exec", name, "--", "sh", "-c", ". /etc/profile; echo $GREETING").stdout
    assert greeting.strip() == "hello world"
    # The memory limit is real: the container's own cgroup says so.
    limit = richc("exec", name, "--", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                  check=False)  # fmt: skip
    if limit.returncode == 0:
        assert int(limit.stdout) == 256 << 20

    stop = richc("stop", name)
    assert "killed" not in stop.stderr
    info = inspect(richc, name)
    assert info["state"] == "stopped" and info["pid"] is None

    richc("start", name)  # a stopped container starts again
    assert richc("exec", name, "--", "true").returncode == 0
    richc("restart", name)
    assert inspect(richc, name)["state"] == "running"
    richc("stop", name)
    richc("rm", name)
    assert richc("inspect", name, check=False).returncode == 1
    assert name not in richc("list").stdout


def _mount_at(path: Path) -> dict[str, str] | None:
    """The mount at *path* as ``{fstype, options, mount_options, root}`` from this
    process's mountinfo (options: the filesystem's; mount_options: the mount's own)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            after = fields[fields.index("-") + 1 :]
            return {
                "fstype": after[0],
                "options": after[2],
                "mount_options": fields[5],
                "root": fields[3],
            }
    return None


def test_busybox_rootfs_shares_the_image_until_rm(
    richc: RichcRunner, richc_root: Path, name: str
) -> None:
    other = unique_name()
    richc("create", name)
    richc("create", other)
    containers = richc_root / "var/lib/richc/containers"
    image = richc_root / "var/lib/richc/images/busybox/rootfs"
    mount = _mount_at(containers / name / "rootfs")
    assert mount is not None and mount["fstype"] == "overlay"
    # Unprivileged: the lower layer is the image through an idmapped read-only view.
    view = containers / name / "overlay/lower"
    assert f"lowerdir={view}," in mount["options"]
    lower = _mount_at(view)
    assert lower is not None and {"ro", "idmapped"} <= set(lower["mount_options"].split(","))
    assert lower["root"].endswith("/busybox/rootfs")
    assert ("/", "overlay") in [(c["path"], c["action"]) for c in inspect(richc, name)["applied"]]
    richc("start", name)
    richc("exec", name, "--", "sh", "-c", "echo mine > /bin/added")
    # The write lands in this container's upper layer; the image and its sibling never see it.
    assert (containers / name / "overlay/upper/bin/added").read_text() == "mine\n"
    assert not (image / "bin/added").exists()
    assert not (containers / other / "rootfs/bin/added").exists()
    # After a host reboot the overlay and the view are gone; start mounts both again.
    richc("stop", name)
    subprocess.run(["umount", str(containers / name / "rootfs")], check=True)
    subprocess.run(["umount", str(view)], check=True)
    richc("start", name)
    assert richc("exec", name, "--", "cat", "/bin/added").stdout == "mine\n"
    richc("rm", "--force", name)
    richc("rm", other)
    assert _mount_at(containers / name / "rootfs") is None
    assert _mount_at(containers / other / "rootfs") is None
    assert _mount_at(view) is None and _mount_at(containers / other / "overlay/lower") is None
    assert (image / "bin/busybox").is_file()


def test_a_config_edited_by_hand_is_what_commands_see(
    richc: RichcRunner, richc_root: Path, name: str
) -> None:
    richc("create", name, "--env", "GREETING=one", "--start")
    assert richc("exec", name, "--", "sh", "-c", "echo $GREETING").stdout == "one\n"
    config = richc_root / "var/lib/richc/containers" / name / "config.yaml"
    config.write_text(config.read_text().replace("GREETING: one", "GREETING: two"))
    # config.yaml is cached as parsed JSON; the cache must notice the edit.
    assert richc("exec", name, "--", "sh", "-c", "echo $GREETING").stdout == "two\n"


def test_create_renders_the_config_its_first_start_uses(
    richc: RichcRunner, richc_root: Path, name: str, runtime: str
) -> None:
    if runtime != "lxc":
        pytest.skip("runc writes its config.json at every start")
    # The first start on a host records the lxcfs views it bound; a later create renders
    # the LXC config for those views, and its first start then uses that file as it is.
    first = unique_name()
    richc("create", first, "--start")
    richc("create", name)
    config = richc_root / "var/lib/richc/containers" / name / "config"
    before = config.stat()
    assert (config.parent / ".config.key").is_file()  # what the config was rendered from
    richc("start", name)
    after = config.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # ... and the views it was rendered for are those inside: meminfo is lxcfs's.
    assert "MemTotal:" in richc("exec", name, "--", "cat", "/proc/meminfo").stdout
    mounted = richc("exec", name, "--", "cat", "/proc/self/mountinfo").stdout
    assert "/proc/meminfo" in mounted and "lxcfs" in mounted
    # Compiled templates are kept under the run dir, root's alone.
    kept = richc_root / "run/richc/templates"
    assert kept.stat().st_mode & 0o777 == 0o700 and any(kept.iterdir())


def test_list_json_and_inspect_fields(richc: RichcRunner, name: str, runtime: str) -> None:
    richc("create", name, "--memory", "128M", "--cpus", "0.5", "--pids", "100", "--env", "A=1")
    richc("start", name)
    info = inspect(richc, name)
    assert set(info) >= INSPECT_FIELDS, INSPECT_FIELDS - set(info)
    assert info["limits"] == {"memory_bytes": 128 << 20, "cpus": 0.5, "cpuset": None, "pids": 100}
    assert info["init"] == "busybox" and info["runtime"] == runtime and info["env"] == {"A": "1"}
    assert set(info["disk"]) >= {"backend", "limit_bytes", "used_bytes"}
    assert set(info["lxcfs"]) >= {"enabled", "healthy"}
    listed = json.loads(richc("list", "--format", "json").stdout)
    assert [item["name"] for item in listed] == [name]
    assert listed[0]["state"] == "running" and listed[0]["pid"] == info["pid"]
    # The same objects (usage figures move between two calls, so compare the rest).
    again = json.loads(richc("ps", "-f", "json").stdout)
    assert [{k: v for k, v in c.items() if k != "usage"} for c in again] == [
        {k: v for k, v in c.items() if k != "usage"} for c in listed
    ]
    rows = dict(
        line.split(None, 1) for line in richc("inspect", name, "-f", "table").stdout.splitlines()
    )
    assert rows["state"].strip() == "running" and rows["limits.pids"].strip() == "100"
    table = richc("list").stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "STATE"] and table[1].split()[:2] == [name, "running"]


def test_exec_exit_codes(richc: RichcRunner, name: str) -> None:
    richc("create", name, "--start")
    assert richc("exec", name, "--", "sh", "-c", "exit 7", check=False).returncode == 7
    assert richc("exec", name, "--", "sh", "-c", "kill -9 $$", check=False).returncode == 137
    missing = richc("exec", name, "--", "no-such-command", check=False)
    assert missing.returncode == 127 and "not found" in missing.stderr
    not_exec = richc("exec", name, "--", "/etc/passwd", check=False)
    assert not_exec.returncode == 126 and "not executable" in not_exec.stderr
    assert richc("exec", "no-such-container", "--", "true", check=False).returncode == 1
    whoami = richc(
        "exec", name, "--user", "nobody", "--cwd", "/tmp", "--", "sh", "-c", "id -u; pwd"
    )
    assert whoami.stdout.split() == ["65534", "/tmp"]
    env = richc("exec", name, "--env", "X=from flag", "--", "sh", "-c", "echo $X")
    assert env.stdout.strip() == "from flag"
    richc("stop", name)
    stopped = richc("exec", name, "--", "true", check=False)
    assert stopped.returncode == 125 and "not running" in stopped.stderr


def test_stop_kills_an_init_that_ignores_the_signal(
    richc: RichcRunner, name: str, tmp_path: Path
) -> None:
    # PID 1 of a pid namespace ignores signals it has no handler for; busybox init has none
    # for SIGURG, so this init never shuts down and must be killed after the timeout.
    config = tmp_path / "c.yaml"
    config.write_text(f"name: {name}\nstop_signal: SIGURG\n")
    richc("create", "--config", str(config), "--start")
    pid = inspect(richc, name)["pid"]
    started = time.monotonic()
    stop = richc("stop", name, "--timeout", "2")
    assert time.monotonic() - started >= 2
    assert "(killed)" in stop.stderr and "did not shut down" in stop.stderr
    assert not Path(f"/proc/{pid}").exists()
    assert inspect(richc, name)["state"] == "stopped"


def test_refusals(richc: RichcRunner, name: str) -> None:
    richc("create", name, "--start")
    again = richc("create", name, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    rm = richc("rm", name, check=False)
    assert rm.returncode == 1 and "is running" in rm.stderr and "--force" in rm.stderr
    assert inspect(richc, name)["state"] == "running"
    start = richc("start", name, check=False)
    assert start.returncode == 1 and "already running" in start.stderr
    richc("rm", "--force", name)
    assert richc("list", "-f", "json").stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["../x"], "invalid container name"),
        (["a/b"], "invalid container name"),
        ([""], "name is required"),
        (["x" * 65], "invalid container name"),
        (["Upper"], "invalid container name"),
        (["ok", "--memory", "10Q"], "limits.memory: '10Q': not a size"),
        (["ok", "--memory", "-5G"], "limits.memory: '-5G'"),
        (["ok", "--memory", "0"], "must be greater than zero"),
        (["ok", "--from", "/no/such/dir"], "/no/such/dir"),
    ],
)
def test_bad_input_is_refused_with_a_message(
    richc: RichcRunner, richc_root: Path, args: list[str], message: str
) -> None:
    proc = richc("create", *args, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr
    containers = richc_root / "var/lib/richc/containers"
    assert not containers.exists() or not any(containers.iterdir())


def test_debug_shows_the_traceback_and_each_command(richc: RichcRunner, name: str) -> None:
    plain = richc("create", "../x", check=False)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    debug = richc("--debug", "create", "../x", check=False)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "error: name: '../x': invalid" in debug.stderr
    # --debug logs the steps and commands of a command that works, and it still works.
    created = richc("--debug", "create", name, "--start")
    assert created.stderr.count("\n") > plain.stderr.count("\n")
    assert richc("exec", name, "--", "true").returncode == 0


def test_two_concurrent_creates_leave_exactly_one(richc: RichcRunner, name: str) -> None:
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: richc("create", name, check=False), range(2)))
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 1], [r.stderr for r in results]
    assert "already exists" in next(r.stderr for r in results if r.returncode)
    listed = json.loads(richc("list", "-f", "json").stdout)
    assert [(c["name"], c["state"]) for c in listed] == [(name, "created")]
    richc("start", name)
    assert richc("exec", name, "--", "true").returncode == 0


def test_sigkill_during_create_leaves_state_rm_force_cleans(
    richc: RichcRunner, richc_root: Path
) -> None:
    richc("create", unique_name(), check=True)  # warm the busybox image cache
    env = dict(os.environ, RICHC_ROOT=str(richc_root))
    containers = richc_root / "var/lib/richc/containers"
    for _attempt in range(30):
        name = unique_name()
        state_file = containers / name / "state.json"
        proc = subprocess.Popen([str(RICHC), "create", name], env=env, stderr=subprocess.DEVNULL)
        while proc.poll() is None and not state_file.exists():
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if state_file.exists() and json.loads(state_file.read_text())["status"] == "creating":
            break
        richc("rm", "--force", name, check=False)
    else:
        pytest.skip("could not interrupt a create in 30 tries (it finished too fast)")

    listed = {c["name"]: c["state"] for c in json.loads(richc("list", "-f", "json").stdout)}
    assert listed[name] == "broken"
    start = richc("start", name, check=False)
    assert start.returncode == 1 and f"rm --force {name}" in start.stderr
    again = richc("create", name, check=False)
    assert again.returncode == 1 and "rm --force" in again.stderr
    plain_rm = richc("rm", name, check=False)
    assert plain_rm.returncode == 1 and "--force" in plain_rm.stderr
    richc("rm", "--force", name)
    assert not (containers / name).exists()
    richc("create", name, "--start")  # the name is usable again
    assert richc("exec", name, "--", "true").returncode == 0


def test_logs_show_the_console_getty(richc: RichcRunner, name: str) -> None:
    richc("create", name, "--start")
    deadline = time.monotonic() + 10
    output = ""
    while time.monotonic() < deadline and "login:" not in output:
        output = richc("logs", name).stdout
        time.sleep(0.2)
    assert f"{name} login:" in output, output
    assert "not found" not in output, "the rc script ran a missing command"
