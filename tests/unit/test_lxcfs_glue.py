"""richc's lxcfs glue: host settings, the spec mounts from recorded views (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from richc import lxcfs
from richc.config import ContainerConfig
from richc.context import Context
from richc.errors import ConfigError
from richc.paths import HostPaths
from richc.spec import Mount
from richc.store import State


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
    assert state.extra["lxcfs"] == {"enabled": False}
    assert lxcfs.mounts(state) == ()
    assert lxcfs.quick_healthy(state, 1) is None


def test_recorded_views_become_optional_bind_mounts() -> None:
    state = State(name="c1")
    state.extra["lxcfs"] = {
        "enabled": True,
        "home": "/h",
        "views": [
            {"source": "/h/proc/meminfo", "target": "/proc/meminfo", "kind": "file"},
            {"source": "/h/sys/devices/system/cpu", "target": "/sys/devices/system/cpu",
             "kind": "dir"},
        ],
    }  # fmt: skip
    assert lxcfs.mounts(state) == (
        Mount("/h/proc/meminfo", "/proc/meminfo", kind="file", optional=True),
        Mount("/h/sys/devices/system/cpu", "/sys/devices/system/cpu", kind="dir", optional=True),
    )
    assert lxcfs.quick_healthy(state, None) is None  # stopped: health does not apply


def test_enabled_without_views_is_unhealthy_while_running() -> None:
    state = State(name="c1", extra={"lxcfs": {"enabled": True, "views": []}})
    assert lxcfs.quick_healthy(state, 1) is False
