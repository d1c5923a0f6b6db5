from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from richc import config as cfg
from richc.errors import Busy, Conflict
from richc.paths import HostPaths
from richc.state import State
from richc.store import Store


def make_store(tmp_path: Path) -> Store:
    return Store(HostPaths.from_root(tmp_path))


def test_reserve_is_exclusive_and_says_how_to_recover(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    cdir = store.reserve("web01")
    with pytest.raises(Conflict) as info:
        store.reserve("web01")
    # Just reserved: its create is still going on; `rm --force` would remove the winner.
    assert "creating it right now" in (info.value.hint or "")
    with cdir.lock(), pytest.raises(Conflict) as info:
        store.reserve("web01")  # the creator holds the lock
    assert "creating it right now" in (info.value.hint or "")
    cdir.save_state(State(name="web01"))  # a create that died after writing its state
    with pytest.raises(Conflict) as info:
        store.reserve("web01")
    assert "rm --force web01" in (info.value.hint or "")


def test_state_and_config_round_trip(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    cdir = store.reserve("web01")
    config = cfg.from_dict({"name": "web01", "limits": {"memory": "1G"}})
    cdir.save_config(config)
    cdir.save_state(State(name="web01", status="created", runtime="lxc"))
    assert cdir.load_config() == config
    data = json.loads(cdir.state_file.read_text())
    assert data["schema"] == 2 and data["status"] == "created"
    assert not list(cdir.path.glob(".*.tmp")), "atomic writes leave no temp files"
    assert store.names() == ["web01"]


def _hold_lock(
    root: str, started: multiprocessing.synchronize.Event, done: multiprocessing.synchronize.Event
) -> None:
    cdir = Store(HostPaths.from_root(root)).container("web01")
    with cdir.lock():
        started.set()
        done.wait(10)


def test_lock_serialises_then_fails_clearly(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    started, done = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), started, done))
    holder.start()
    try:
        assert started.wait(10)
        cdir = make_store(tmp_path).container("web01")
        with pytest.raises(Busy, match=f"pid {holder.pid}"), cdir.lock(wait=0.2):
            pass
    finally:
        done.set()
        holder.join(10)
    with make_store(tmp_path).container("web01").lock(wait=1):
        pass  # released when the holder exited


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="newer than this richc"):
        State.from_dict({"name": "a", "schema": 99})


FULL_CONFIG = {
    "name": "web01",
    "limits": {"memory": "1G", "cpus": 1.5, "pids": 200},
    "env": {"GREETING": "hello"},
    "annotations": {"team": "ops"},
    "disk": {"size": "1G", "inodes": 5000},
    "hooks": {"poststop": [{"path": "/etc/richc/x", "timeout": 5}]},
}


def test_config_cache_holds_what_the_yaml_holds(tmp_path: Path) -> None:
    cdir = make_store(tmp_path).reserve("web01")
    config = cfg.from_dict(FULL_CONFIG)
    cdir.save_config(config)
    cache = json.loads((cdir.path / ".config.json").read_text())
    import yaml

    # The cache is a faithful copy: what a YAML parse of config.yaml gives, key for key.
    assert cache["config"] == yaml.safe_load(cdir.config_file.read_text())
    assert cdir.load_config() == config


def test_config_edited_by_hand_wins_over_the_cache(tmp_path: Path) -> None:
    cdir = make_store(tmp_path).reserve("web01")
    cdir.save_config(cfg.from_dict({"name": "web01", "limits": {"memory": "1G"}}))
    import yaml

    data = yaml.safe_load(cdir.config_file.read_text())
    data["limits"]["memory"] = "2G"
    cdir.config_file.write_text(yaml.safe_dump(data))  # in place, at once: same inode
    assert cdir.load_config().limits.memory == 2 * 1024**3


def test_a_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    cdir = make_store(tmp_path).reserve("web01")
    config = cfg.from_dict({"name": "web01"})
    cdir.save_config(config)
    (cdir.path / ".config.json").write_text("{not json")
    assert cdir.load_config() == config


def test_only_a_lock_holder_refreshes_the_cache(tmp_path: Path) -> None:
    cdir = make_store(tmp_path).reserve("web01")
    cdir.save_config(cfg.from_dict({"name": "web01"}))
    cache = cdir.path / ".config.json"
    cache.unlink()  # as after an upgrade from a richc that wrote no cache
    cdir.load_config()
    # A lockless reader (exec, list) may race `richc rm` emptying the directory.
    assert not cache.exists()
    with cdir.lock():
        cdir.load_config()
    assert cache.exists()


SCHEMA_1 = {
    "name": "web",
    "status": "created",
    "created_at": "2026-12-01T10:00:00Z",
    "started_at": "2026-12-01T10:00:05Z",
    "runtime": "lxc",
    "init": "busybox",
    "rootfs": "/var/lib/richc/containers/web/rootfs",
    "applied": [{"path": "/etc/inittab", "action": "write", "reason": "busybox init system"}],
    "extra": {
        "pid": 4242,
        "pid_start_time": 99,
        "cgroup_scope": "lxc.payload.web",
        "parent_pid": 4240,
        "parent_start_time": 98,
        "stop_requested": "2026-12-01T10:01:00Z",
        "restarting": True,
        "disk": {"backend": "loop", "limit_bytes": 1 << 26, "limit_inodes": None},
        "rootfs": {"mode": "overlay", "image": "/i", "upper": "/u", "work": "/w"},
        "lxcfs": {
            "enabled": True,
            "home": "/var/lib/lxcfs",
            "views": [{"source": "/var/lib/lxcfs/proc/meminfo", "target": "/proc/meminfo",
                       "kind": "file"}],
        },
        "unit": {"name": "richc@web.service", "files": ["/etc/a"], "enabled": True,
                 "installed_at": "2026-12-01T10:02:00Z"},
    },
    "schema": 1,
}  # fmt: skip


def test_a_schema_1_state_file_is_migrated_and_saved_as_schema_2(tmp_path: Path) -> None:
    from richc.state import (
        DiskRecord,
        InitRecord,
        LxcfsRecord,
        OverlayRecord,
        UnitRecord,
        ViewRecord,
    )

    store = Store(HostPaths(tmp_path))
    cdir = store.reserve("web")
    cdir.state_file.write_text(json.dumps(SCHEMA_1))
    state = cdir.load_state()
    assert state.init_run == InitRecord(4242, 99, "lxc.payload.web", 4240, 98)
    assert state.stop_requested == "2026-12-01T10:01:00Z" and state.restarting
    assert state.disk == DiskRecord("loop", 1 << 26, None)
    assert state.overlay == OverlayRecord("/i", "/u", "/w")
    assert state.lxcfs == LxcfsRecord(
        True,
        "/var/lib/lxcfs",
        (ViewRecord("/var/lib/lxcfs/proc/meminfo", "/proc/meminfo", "file"),),
    )
    assert state.unit == UnitRecord("richc@web.service", ("/etc/a",), True, "2026-12-01T10:02:00Z")
    assert state.applied == SCHEMA_1["applied"]
    cdir.save_state(state)
    saved = json.loads(cdir.state_file.read_text())
    assert saved["schema"] == 2 and "extra" not in saved
    assert Store(HostPaths(tmp_path)).get("web").load_state() == state  # round trip


def test_a_stopped_schema_1_state_has_no_init_record(tmp_path: Path) -> None:
    data = {"name": "web", "status": "created", "extra": {"lxcfs": {"enabled": False}}}
    state = State.from_dict({**data, "schema": 1})
    assert state.init_run is None and state.lxcfs is not None and not state.lxcfs.enabled
    assert state.disk is None and state.overlay is None and not state.restarting
