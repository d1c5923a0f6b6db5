"""Where hooks come from and in which order: built-in, hooks.d, OCI JSON, the container's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from richc import config as cfg
from richc.hookrun import sources
from richc.hookrun.model import MatchInfo, Source, Stage
from richc.paths import HostPaths


def executable(path: Path, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HostPaths:
    builtin = tmp_path / "builtin"
    monkeypatch.setattr(sources, "builtin_dir", lambda: builtin)
    return HostPaths.from_root(tmp_path / "root")


def oci_file(paths: HostPaths, name: str, stages: list[str], when: dict[str, object]) -> None:
    paths.hooks_d.mkdir(parents=True, exist_ok=True)
    (paths.hooks_d / name).write_text(
        json.dumps(
            {"version": "1.0.0", "hook": {"path": "/bin/true"}, "when": when, "stages": stages}
        )
    )


MATCH = MatchInfo(command="/sbin/init")


def test_four_sources_in_order(paths: HostPaths, tmp_path: Path) -> None:
    executable(tmp_path / "builtin/prestart/50-builtin")
    executable(paths.hooks_d / "prestart/20-second")
    executable(paths.hooks_d / "prestart/10-first")
    oci_file(paths, "b.json", ["createRuntime"], {"always": True})
    oci_file(paths, "a.json", ["prestart"], {"commands": ["init$"]})
    oci_file(paths, "c.json", ["poststop"], {"always": True})  # another stage
    oci_file(paths, "d.json", ["prestart"], {"commands": ["^systemd$"]})  # does not match
    config = cfg.from_dict(
        {
            "name": "web01",
            "hooks": {"prestart": ["/usr/local/bin/mine", {"path": "/x", "args": ["1"]}]},
        }
    )
    hooks = sources.resolve(paths, config, Stage.prestart, MATCH)
    assert [h.label for h in hooks] == [
        "builtin/50-builtin",
        "hooks.d/10-first",
        "hooks.d/20-second",
        "oci/a",
        "oci/b",
        "container/mine",
        "container/x",
    ]
    assert hooks[-1].argv == ("/x", "1")


def test_hooks_d_skips_non_executables_dotfiles_and_leftovers(paths: HostPaths) -> None:
    stage_dir = paths.hooks_d / "poststop"
    executable(stage_dir / "10-run")
    executable(stage_dir / "20-disabled", 0o644)
    executable(stage_dir / ".hidden")
    executable(stage_dir / "30-old.dpkg-old")
    executable(stage_dir / "40-edit~")
    (stage_dir / "50-dir").mkdir()
    hooks, skipped = sources.scan_dir(stage_dir, Source.hooks_d)
    assert [h.name for h in hooks] == ["10-run"]
    assert {s.path.name: s.reason for s in skipped} == {
        "20-disabled": "not executable (chmod +x to enable it)",
        "50-dir": "not a regular file",
    }


def test_lexical_order_is_bytewise(paths: HostPaths) -> None:
    for name in ("b", "B", "10", "9", "_a"):
        executable(paths.hooks_d / "prestop" / name)
    hooks = sources.scan_dir(paths.hooks_d / "prestop", Source.hooks_d)[0]
    assert [h.name for h in hooks] == ["10", "9", "B", "_a", "b"]


def test_broken_oci_file_becomes_a_failing_hook_at_every_stage(paths: HostPaths) -> None:
    paths.hooks_d.mkdir(parents=True)
    (paths.hooks_d / "broken.json").write_text("{")
    config = cfg.from_dict({"name": "web01"})
    for stage in Stage:
        (hook,) = sources.resolve(paths, config, stage, MATCH)
        assert hook.problem and "not valid JSON" in hook.problem


def test_container_hook_keeps_timeout_env_and_policy(paths: HostPaths) -> None:
    config = cfg.from_dict(
        {
            "name": "web01",
            "hooks": {
                "poststart": [
                    {"path": "/opt/reg", "timeout": 5, "on_failure": "warn", "env": {"A": "b"}}
                ]
            },
        }
    )
    (hook,) = sources.resolve(paths, config, Stage.poststart, MATCH)
    assert (hook.timeout, hook.on_failure, hook.env, hook.blocking) == (
        5,
        "warn",
        (("A", "b"),),
        False,
    )


def test_annotations_say_name_source_and_init() -> None:
    config = cfg.from_dict({"name": "web01"})
    assert dict(sources.container_annotations(config, "busybox")) == {
        "io.richc.name": "web01",
        "io.richc.source": "busybox",
        "io.richc.init": "busybox",
    }
    own = cfg.from_dict({"name": "db1", "annotations": {"com.example.role": "db"}})
    assert sources.container_annotations(own, "busybox")[3:] == (("com.example.role", "db"),)


def test_world_writable_oci_file_is_refused_not_dropped(paths: HostPaths) -> None:
    oci_file(paths, "open.json", ["poststop"], {"always": True})
    (paths.hooks_d / "open.json").chmod(0o666)
    config = cfg.from_dict({"name": "web01"})
    (hook,) = sources.resolve(paths, config, Stage.prestart, MATCH)  # at every stage
    assert hook.problem and "world-writable" in hook.problem and "chmod o-w" in hook.problem
