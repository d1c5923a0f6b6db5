from __future__ import annotations

from pathlib import Path

import pytest

from richc import config as cfg
from richc.errors import ConfigError, UsageError
from richc.sizes import format_cpuset, parse_cpuset, parse_size


@pytest.mark.parametrize("name", ["a", "web01", "a-b", "0abc", "x" * 63])
def test_valid_names(name: str) -> None:
    assert cfg.validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "../x", "a/b", "x" * 64, "x" * 65, "Web01", "-a", "a-", "a_b", "a.b"]
)
def test_invalid_names_are_refused_with_a_hint(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        cfg.validate_name(name)
    assert "invalid container name" in str(info.value)
    assert info.value.hint and "63 characters" in info.value.hint


@pytest.mark.parametrize(
    ("text", "size"),
    [("512M", 512 << 20), ("1G", 1 << 30), ("1.5G", 3 << 29), ("1048576", 1 << 20), (4096, 4096),
     ("64m", 64 << 20), ("2GiB", 2 << 30)],
)  # fmt: skip
def test_sizes(text: object, size: int) -> None:
    assert parse_size("limits.memory", text) == size


@pytest.mark.parametrize("text", ["0", "-5G", "10Q", "", "lots", True, "1.5.5G"])
def test_bad_sizes_name_key_and_value(text: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_size("disk.size", text)
    assert str(info.value).startswith("disk.size: ")
    assert repr(text) in str(info.value)


def test_cpuset_round_trip() -> None:
    assert parse_cpuset("k", "0,2-3,5") == (0, 2, 3, 5)
    assert format_cpuset((0, 2, 3, 5)) == "0,2-3,5"
    with pytest.raises(ConfigError):
        parse_cpuset("k", "3-1")


def test_flags_win_over_file_and_nested_maps_merge() -> None:
    file_data = {"name": "web01", "limits": {"memory": "1G", "pids": 100}, "env": {"A": "1"}}
    flags = {"limits": {"memory": "512M", "cpus": None}, "env": {"B": "2"}, "init": None}
    config = cfg.from_dict(cfg.merge(file_data, flags))
    assert config.limits.memory == 512 << 20
    assert config.limits.pids == 100
    assert config.env_dict == {"A": "1", "B": "2"}
    assert config.init is cfg.Init.auto


def test_normalised_dict_round_trips() -> None:
    config = cfg.from_dict(
        {
            "name": "web01",
            "from": "tar:/srv/web01.tar.gz",
            "limits": {"memory": "2G", "cpus": 1.5, "cpuset": "0-1", "pids": 2048},
            "hooks": {
                "poststart": [{"path": "/usr/local/bin/register", "args": ["web01"], "timeout": 10}]
            },
            "env": {"APP_ENV": "prod"},
            "restart": "on-failure",
        }
    )
    assert cfg.from_dict(config.to_dict()) == config


def test_unknown_keys_and_bad_values_are_named() -> None:
    with pytest.raises(ConfigError, match=r"^memroy: "):
        cfg.from_dict({"name": "a", "memroy": "1G"})
    with pytest.raises(ConfigError, match=r"^limits\.memroy: "):
        cfg.from_dict({"name": "a", "limits": {"memroy": "1G"}})
    with pytest.raises(ConfigError, match=r"^init: 'upstart'"):
        cfg.from_dict({"name": "a", "init": "upstart"})
    with pytest.raises(ConfigError, match=r"^hooks: 'prestrat'"):
        cfg.from_dict({"name": "a", "hooks": {"prestrat": ["/bin/true"]}})


def test_sources_are_normalised() -> None:
    assert cfg.normalise_source("/srv/vm.tar.xz") == "tar:/srv/vm.tar.xz"
    assert cfg.normalise_source("/mnt/vmdisk") == "dir:/mnt/vmdisk"
    assert cfg.normalise_source("debian:bookworm") == "debian:bookworm"
    with pytest.raises(ConfigError):
        cfg.normalise_source("ubuntu")


def test_invalid_yaml_gets_a_position(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("name: a\nlimits: {memory: 1G\n")
    with pytest.raises(UsageError, match="not valid YAML at line"):
        cfg.load_yaml(bad)
    listy = tmp_path / "l.yaml"
    listy.write_text("- a\n")
    with pytest.raises(UsageError, match="expected a YAML mapping"):
        cfg.load_yaml(listy)


def test_annotations_are_validated_string_to_string() -> None:
    file_data = {"name": "db1", "annotations": {"com.example.team": "dba", "tier": "gold"}}
    flags = {"annotations": cfg.parse_key_values("--annotation", ["com.example.role=db"])}
    config = cfg.from_dict(cfg.merge(file_data, flags))
    assert config.annotations == (
        ("com.example.role", "db"),
        ("com.example.team", "dba"),
        ("tier", "gold"),
    )
    assert cfg.from_dict(config.to_dict()) == config
    assert "annotations" not in cfg.from_dict({"name": "a"}).to_dict()
    assert cfg.from_dict({"name": "a", "annotations": {"k": ""}}).annotations == (("k", ""),)
    with pytest.raises(ConfigError, match=r"^annotations: '': an annotation key"):
        cfg.from_dict({"name": "a", "annotations": {"": "x"}})
    with pytest.raises(ConfigError, match=r"^annotations: 3: an annotation key"):
        cfg.from_dict({"name": "a", "annotations": {3: "x"}})
    with pytest.raises(ConfigError, match=r"^annotations\.replicas: 3: an annotation value"):
        cfg.from_dict({"name": "a", "annotations": {"replicas": 3}})
    with pytest.raises(ConfigError, match=r"^annotations\.on: True: an annotation value"):
        cfg.from_dict({"name": "a", "annotations": {"on": True}})
    with pytest.raises(ConfigError, match=r"^annotations\.gone: None: "):
        cfg.from_dict({"name": "a", "annotations": {"gone": None}})
    with pytest.raises(ConfigError, match=r"^annotations: \['a=b'\]: expected a mapping"):
        cfg.from_dict({"name": "a", "annotations": ["a=b"]})
    with pytest.raises(ConfigError, match=r"^annotations\.io\.richc\.name: 'x': reserved"):
        cfg.from_dict({"name": "a", "annotations": {"io.richc.name": "x"}})
    with pytest.raises(ConfigError, match=r"^--annotation: 'role': expected KEY=VALUE"):
        cfg.parse_key_values("--annotation", ["role"])
