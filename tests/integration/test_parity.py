"""Parity: the same config started on LXC and on runc looks the same from inside and to hooks.

Each container is described from the user's side (what `richc exec` shows, what a hook
received) and the two descriptions are compared key by key. Where the runtimes differ on
purpose, :data:`DOCUMENTED` says how and why, and the test checks that the difference is
exactly the documented one, so the list stays true.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RichcRunner, unique_name

pytestmark = pytest.mark.integration

STAGES = ("prestart", "poststart", "prestop", "poststop")

# key -> (value on lxc, value on runc, why they differ)
DOCUMENTED: dict[str, tuple[object, object, str]] = {
    "pid1_environ": (
        ["APP=one", "container=lxc"],
        ["APP=one", "HOME=/root", "container=lxc"],
        "runc always gives the init a HOME (from its user's passwd entry when unset)",
    ),
    "mount:/dev/mqueue": (
        False,
        True,
        "the OCI bundle mounts the standard /dev/mqueue; LXC's autodev does not",
    ),
    "mount:/proc/sys/net": (
        True,
        False,
        "LXC's proc:mixed re-mounts /proc/sys/net writable in the container's own network "
        "namespace; runc cannot mount below /proc, so network sysctls are read-only there",
    ),
    "mount:/proc/sys/kernel/random/boot_id": (
        True,
        False,
        "LXC binds a per-container boot id; runc has no such mount",
    ),
    "mount:/dev/ptmx": (
        True,
        False,
        "LXC bind-mounts /dev/pts/ptmx over /dev/ptmx; runc makes /dev/ptmx a symlink to it "
        "(both open the container's own devpts)",
    ),
}

# Keys compared as they are (anything not in DOCUMENTED must be equal).
INSIDE_SCRIPT = r"""
echo "comm=$(cat /proc/1/comm)"
echo "cmdline=$(tr '\0' ' ' </proc/1/cmdline)"
echo "hostname=$(hostname)"
echo "memtotal=$(grep MemTotal /proc/meminfo)"
echo "swaptotal=$(grep SwapTotal /proc/meminfo)"
grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/1/status | tr -d '\t' | sed 's/:/=/'
echo "pid1_environ=$(tr '\0' '\n' </proc/1/environ | sort | tr '\n' ' ')"
echo "cgroup_limit_inside=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null \
    || cat /sys/fs/cgroup/memory.max 2>/dev/null || echo none)"
echo "console=$(ls -l /dev/console | cut -c1)"
echo "uid=$(id -u)"
echo "dev=$(ls /dev | sort | tr '\n' ' ')"
"""

HOOK = """#!{python}
import json, os, sys
state = json.load(sys.stdin)
record = {{
    "stage": os.environ["RICHC_STAGE"],
    "stdin_keys": sorted(state),
    "status": state.get("status"),
    "env_keys": sorted(k for k in os.environ if k.startswith("RICHC_")),
    "pid_is_live": "pid" in state and os.path.exists("/proc/%d" % state["pid"]),
}}
with open({out!r} + os.environ["RICHC_NAME"], "a") as out:
    out.write(json.dumps(record) + "\\n")
"""


def describe_inside(richc: RichcRunner, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in richc("exec", name, "--", "sh", "-c", INSIDE_SCRIPT).stdout.splitlines():
        key, _, value = line.partition("=")
        out[key] = value.strip()
    out["pid1_environ"] = sorted(out["pid1_environ"].split())
    # ls /dev differs with the mounts below; compared through them
    out["dev"] = sorted(set(out["dev"].split()) - {"mqueue", ".lxc-boot-id"})
    mountinfo = richc("exec", name, "--", "cat", "/proc/self/mountinfo").stdout
    points = {line.split()[4] for line in mountinfo.splitlines()}
    fstypes = {line.split()[4]: line.split(" - ")[1].split()[0] for line in mountinfo.splitlines()}
    out["lxcfs_views"] = sorted(p for p, t in fstypes.items() if t == "fuse.lxcfs")
    for point in (
        "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/console", "/proc/sys",
        "/dev/mqueue", "/proc/sys/net", "/proc/sys/kernel/random/boot_id", "/dev/ptmx",
        "/sys/fs/cgroup", "/run", "/tmp",
    ):  # fmt: skip
        out[f"mount:{point}"] = point in points
    return out


def host_memory_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            limit = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.limit_in_bytes"
            return limit.read_text().strip()
    return "none"


def namespaces_of(pid: int) -> list[str]:
    """The namespace types in which *pid* differs from this (host) process."""
    out = []
    for ns in ("mnt", "pid", "uts", "ipc", "net", "cgroup", "user"):
        if Path(f"/proc/{pid}/ns/{ns}").resolve() != Path(f"/proc/self/ns/{ns}").resolve():
            out.append(ns)
    return out


def test_same_config_on_lxc_and_runc(richc: RichcRunner, richc_root: Path, tmp_path: Path) -> None:
    records = tmp_path / "hooks-"
    hooks_d = richc_root / "etc/richc/hooks.d"
    for stage in STAGES:
        hook = hooks_d / stage / "10-record"
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(HOOK.format(python=sys.executable, out=str(records)))
        hook.chmod(0o755)

    views: dict[str, dict[str, Any]] = {}
    names = {runtime: unique_name() for runtime in ("lxc", "runc")}
    for runtime, name in names.items():
        config = tmp_path / f"{runtime}.yaml"
        config.write_text(
            f"name: {name}\nruntime: {runtime}\nhostname: parity\n"
            "limits:\n  memory: 256M\n  pids: 100\nenv:\n  APP: one\n"
        )
        richc("create", "--config", str(config), "--start")
        info = json.loads(richc("inspect", name).stdout)
        assert info["runtime"] == runtime
        view = describe_inside(richc, name)
        view["host_memory_limit"] = host_memory_limit(info["pid"])
        view["namespaces"] = namespaces_of(info["pid"])
        view["inspect_lxcfs"] = info["lxcfs"]
        view["inspect_limits"] = info["limits"]
        richc("stop", name)
        hooks = [json.loads(line) for line in Path(f"{records}{name}").read_text().splitlines()]
        view["hook_order"] = [h["stage"] for h in hooks]
        for h in hooks:
            view[f"hook:{h['stage']}"] = {k: v for k, v in h.items() if k != "stage"}
        views[runtime] = view

    lxc, runc = views["lxc"], views["runc"]
    # The facts the issue names, spelled out so a failure says which one broke.
    assert lxc["comm"] == runc["comm"] == "init"
    assert lxc["hostname"] == runc["hostname"] == "parity"
    assert lxc["memtotal"] == runc["memtotal"] == "MemTotal:         262144 kB"
    assert lxc["host_memory_limit"] == runc["host_memory_limit"] == str(256 << 20)
    assert lxc["lxcfs_views"] == runc["lxcfs_views"] and "/proc/meminfo" in lxc["lxcfs_views"]
    assert lxc["hook_order"] == runc["hook_order"] == list(STAGES)
    assert lxc["CapBnd"] == runc["CapBnd"] and lxc["CapEff"] == runc["CapEff"]

    undocumented = {
        key: (lxc.get(key), runc.get(key))
        for key in sorted(set(lxc) | set(runc))
        if key not in DOCUMENTED and lxc.get(key) != runc.get(key)
    }
    assert not undocumented, f"lxc and runc differ without a documented reason: {undocumented}"
    for key, (on_lxc, on_runc, why) in DOCUMENTED.items():
        assert (lxc[key], runc[key]) == (on_lxc, on_runc), f"{key} no longer differs as: {why}"
