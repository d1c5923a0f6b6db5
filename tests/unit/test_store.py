from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from richc import config as cfg
from richc.errors import Busy, Conflict
from richc.paths import HostPaths
from richc.store import State, Store


def make_store(tmp_path: Path) -> Store:
    return Store(HostPaths.from_root(tmp_path))


def test_reserve_is_exclusive_and_says_how_to_recover(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.reserve("web01")
    with pytest.raises(Conflict) as info:
        store.reserve("web01")
    # No state.json yet: the first create is (or was) still in progress.
    assert "rm --force" in (info.value.hint or "")


def test_state_and_config_round_trip(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    cdir = store.reserve("web01")
    config = cfg.from_dict({"name": "web01", "limits": {"memory": "1G"}})
    cdir.save_config(config)
    cdir.save_state(State(name="web01", status="created", runtime="lxc"))
    assert cdir.load_config() == config
    data = json.loads(cdir.state_file.read_text())
    assert data["schema"] == 1 and data["status"] == "created"
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
