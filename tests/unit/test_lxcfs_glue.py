"""richc's lxcfs glue: host settings, the spec mounts from recorded views (no root)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

import lxcfs_integration as li
from richc import lxcfs_ops
from richc.config import ContainerConfig
from richc.context import Context
from richc.errors import ConfigError
from richc.hostres import lxcfs
from richc.paths import HostPaths
from richc.spec import Mount
from richc.state import LxcfsRecord, State, ViewRecord


def paths_with(tmp_path: Path, host_yaml: str | None) -> HostPaths:
    paths = HostPaths.from_root(tmp_path)
    if host_yaml is not None:
        paths.host_config.parent.mkdir(parents=True)
        paths.host_config.write_text(host_yaml)
    return paths


def test_default_home_lives_under_the_root(tmp_path: Path) -> None:
    conf = lxcfs.settings(paths_with(tmp_path, None))
    assert conf == lxcfs.LxcfsSettings(tmp_path.resolve() / "var/lib/lxcfs", False, ())


def test_host_config_sets_home_required_and_options(tmp_path: Path) -> None:
    paths = paths_with(
        tmp_path,
        "runtime: lxc\nlxcfs_home: /srv/lxcfs\nlxcfs_required: true\nlxcfs_options: [-l]\n",
    )
    assert lxcfs.settings(paths) == lxcfs.LxcfsSettings(Path("/srv/lxcfs"), True, ("-l",))


def test_host_default_fills_only_an_unset_lxcfs(tmp_path: Path) -> None:
    off = paths_with(tmp_path / "off", "lxcfs: false\n")
    assert lxcfs.settings(off).default_enabled is False
    assert lxcfs.with_host_default(off, {"name": "c1"}) == {"name": "c1", "lxcfs": False}
    # --lxcfs, or `lxcfs: true` in the container's config file, wins over the host default.
    assert lxcfs.with_host_default(off, {"name": "c1", "lxcfs": True})["lxcfs"] is True
    unset = paths_with(tmp_path / "unset", None)
    assert lxcfs.with_host_default(unset, {"name": "c1"})["lxcfs"] is True


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("lxcfs_home: relative/dir\n", "lxcfs_home"),
        ("lxcfs_required: maybe\n", "lxcfs_required"),
        ("lxcfs_options: -l\n", "lxcfs_options"),
        ("lxcfs: sometimes\n", "lxcfs"),
    ],
)
def test_bad_host_settings_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        lxcfs.settings(paths_with(tmp_path, text))
    assert info.value.key == key


def test_disabled_container_records_no_views_and_gets_no_mounts(tmp_path: Path) -> None:
    state = State(name="c1")
    ctx = Context(paths=paths_with(tmp_path, None))
    lxcfs.prepare(ctx, ContainerConfig(name="c1", lxcfs=False), state)
    assert state.lxcfs == LxcfsRecord(enabled=False)
    assert lxcfs.mounts(state) == ()
    assert lxcfs.quick_healthy(state, 1) is None


def test_recorded_views_become_optional_bind_mounts() -> None:
    state = State(name="c1")
    state.lxcfs = LxcfsRecord(
        enabled=True,
        home="/h",
        views=(
            ViewRecord("/h/proc/meminfo", "/proc/meminfo", "file"),
            ViewRecord("/h/sys/devices/system/cpu", "/sys/devices/system/cpu", "dir"),
        ),
    )
    assert lxcfs.mounts(state) == (
        Mount("/h/proc/meminfo", "/proc/meminfo", kind="file", optional=True),
        Mount("/h/sys/devices/system/cpu", "/sys/devices/system/cpu", kind="dir", optional=True),
    )
    assert lxcfs.quick_healthy(state, None) is None  # stopped: health does not apply


def test_enabled_without_views_is_unhealthy_while_running() -> None:
    state = State(name="c1", lxcfs=LxcfsRecord(enabled=True))
    assert lxcfs.quick_healthy(state, 1) is False


HOME = Path("/h")
OFFERED = (
    li.View(HOME / "proc/meminfo", "/proc/meminfo", li.ViewKind.FILE),
    li.View(HOME / "proc/pressure/cpu", "/proc/pressure/cpu", li.ViewKind.FILE),
    li.View(HOME / "sys/devices/system/cpu", "/sys/devices/system/cpu", li.ViewKind.DIR),
)
WITHOUT_PRESSURE = [v for v in OFFERED if not v.target.startswith("/proc/pressure/")]


@pytest.fixture
def serving_lxcfs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, tuple[li.View, ...]]]:
    """lxcfs serving OFFERED (pressure included); records each remount_views call."""
    process = li.LxcfsProcess(HOME, li.Manager.SPAWNED, 42, None)
    monkeypatch.setattr(lxcfs, "ensure_serving", lambda paths: (process, False))
    monkeypatch.setattr(li, "compute_views", lambda home: OFFERED)
    calls: list[tuple[int, tuple[li.View, ...]]] = []

    def remount_views(pid: int, views: Sequence[li.View]) -> li.RemountReport:
        calls.append((pid, tuple(views)))
        results = tuple(li.ViewResult(v.target, li.Outcome.REPLACED, 1) for v in views)
        return li.RemountReport(pid, li.Method.OPEN_TREE, results)

    monkeypatch.setattr(li, "remount_views", remount_views)
    return calls


@pytest.mark.parametrize(("runtime", "expected"), [("lxc", OFFERED), ("runc", WITHOUT_PRESSURE)])
def test_start_records_only_the_views_the_runtime_mounts(
    tmp_path: Path, serving_lxcfs: object, runtime: str, expected: Sequence[li.View]
) -> None:
    state = State(name="c1", runtime=runtime)
    lxcfs.prepare(Context(paths=paths_with(tmp_path, None)), ContainerConfig(name="c1"), state)
    assert lxcfs.recorded_views(state) == tuple(expected)


def test_remount_attaches_on_runc_only_what_its_start_mounted(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serving_lxcfs: list[tuple[int, tuple[li.View, ...]]],
) -> None:
    ctx = Context(paths=paths_with(tmp_path, None))
    targets = []
    for pid, runtime in ((101, "lxc"), (202, "runc")):
        cdir = ctx.store.reserve(runtime)
        state = State(name=runtime, runtime=runtime)
        lxcfs.prepare(ctx, ContainerConfig(name=runtime), state)
        cdir.save_state(state)
        targets.append(lxcfs_ops.Target(cdir, state, pid))
    monkeypatch.setattr(lxcfs_ops, "running_targets", lambda ctx, names: targets)

    result = lxcfs_ops.remount(ctx)
    assert dict(serving_lxcfs) == {101: OFFERED, 202: tuple(WITHOUT_PRESSURE)}
    views = {c["name"]: [v["target"] for v in c["views"]] for c in result["containers"]}
    assert views["runc"] == ["/proc/meminfo", "/sys/devices/system/cpu"]
    # What is recorded (and so what health checks) is still what runc mounted.
    saved = ctx.store.get("runc").load_state()
    assert lxcfs.recorded_views(saved) == tuple(WITHOUT_PRESSURE)


def test_mounts_read_from_the_record_are_those_of_the_recorded_views() -> None:
    # mounts() skips li.View (a stop builds the spec too); its digest must not change.
    views = [
        li.View(Path("/var/lib/lxcfs/proc/meminfo"), "/proc/meminfo", kind) for kind in li.ViewKind
    ]
    state = State(name="c1")
    state.lxcfs = LxcfsRecord(enabled=True, views=tuple(map(lxcfs.view_record, views)))
    assert lxcfs.mounts(state) == tuple(
        Mount(source=str(v.source), target=v.target, kind=v.kind.value, optional=True)
        for v in lxcfs.recorded_views(state)
    )


@pytest.mark.parametrize(("runtime", "expected"), [("lxc", OFFERED), ("runc", WITHOUT_PRESSURE)])
def test_create_expects_what_the_last_start_recorded(
    tmp_path: Path, serving_lxcfs: object, runtime: str, expected: Sequence[li.View]
) -> None:
    # create renders the LXC config ahead for the views the next start will record: those
    # lxcfs served at the last start on the host, filtered for the new container's runtime.
    paths = paths_with(tmp_path, None)
    ctx = Context(paths=paths)
    new = State(name="c2", runtime=runtime)
    assert lxcfs.expected_record(ctx, ContainerConfig(name="c2"), new) is None  # no start yet
    lxcfs.prepare(ctx, ContainerConfig(name="c1"), State(name="c1", runtime="lxc"))
    started = State(name="c2", runtime=runtime)
    lxcfs.prepare(ctx, ContainerConfig(name="c2"), started)
    guess = lxcfs.expected_record(ctx, ContainerConfig(name="c2"), new)
    assert guess == started.lxcfs
    assert lxcfs.recorded_views(State(name="c2", lxcfs=guess)) == tuple(expected)
    off = lxcfs.expected_record(ctx, ContainerConfig(name="c2", lxcfs=False), new)
    assert off == LxcfsRecord(enabled=False)


def test_no_guess_from_another_home_or_a_damaged_record(
    tmp_path: Path, serving_lxcfs: object
) -> None:
    paths = paths_with(tmp_path, None)
    ctx = Context(paths=paths)
    lxcfs.prepare(ctx, ContainerConfig(name="c1"), State(name="c1"))
    record = lxcfs.run_dir(paths) / lxcfs.LAST_VIEWS
    assert lxcfs.expected_record(ctx, ContainerConfig(name="c2"), State(name="c2")) is not None
    paths.host_config.parent.mkdir(parents=True)
    paths.host_config.write_text("lxcfs_home: /elsewhere\n")
    assert lxcfs.expected_record(ctx, ContainerConfig(name="c2"), State(name="c2")) is None
    paths.host_config.unlink()
    home = json.dumps(str(lxcfs.settings(paths).home))
    for damaged in ("{", "[]", '{"home": "x"}', f'{{"home": {home}, "views": "no"}}'):
        record.write_text(damaged)
        assert lxcfs.expected_record(ctx, ContainerConfig(name="c2"), State(name="c2")) is None
