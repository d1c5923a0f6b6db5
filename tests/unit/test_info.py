"""`list`'s table rows (info.summary) agree with `inspect` (info.describe) on what both show."""

from __future__ import annotations

from pathlib import Path

from richc import config as cfg
from richc.context import Context
from richc.info import describe, list_all, summary
from richc.paths import HostPaths
from richc.state import State


def test_summary_is_the_table_subset_of_describe(tmp_path: Path) -> None:
    ctx = Context(paths=HostPaths.from_root(tmp_path))
    made = ctx.store.reserve("web01")
    made.save_config(cfg.from_dict({"name": "web01", "limits": {"memory": "1G"}}))
    made.save_state(State(name="web01", runtime="lxc", init="busybox", status="created"))
    half = ctx.store.reserve("half")  # a create that died before writing its config
    half.save_state(State(name="half", status="creating"))

    full = describe(ctx, made)
    brief = summary(ctx, made)
    for key in ("name", "state", "runtime", "init", "pid", "source", "usage"):
        assert brief[key] == full[key], key
    assert brief["limits"]["memory_bytes"] == full["limits"]["memory_bytes"] == 1 << 30
    assert brief["state"] == "created" and "disk" not in brief and "disk" in full
    assert [row["state"] for row in list_all(ctx, brief=True)] == ["broken", "created"]
    assert [row["name"] for row in list_all(ctx)] == ["half", "web01"]
