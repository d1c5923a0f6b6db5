"""disk.inodes: config and `set` validation, and how richc.disk fails closed (or warns in
best-effort mode) where the backend cannot limit inodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import quota
from richc import config as cfg
from richc import reconfigure as settings
from richc.context import Context
from richc.errors import ConfigError, HostUnsupported, UsageError
from richc.hostres import disk
from richc.paths import HostPaths
from richc.state import State


def test_disk_inodes_round_trip() -> None:
    config = cfg.from_dict({"name": "a", "disk": {"size": "64M", "inodes": 10000}})
    assert config.disk.inodes == 10000 and config.disk.size == 64 << 20
    assert config.disk.to_dict()["inodes"] == 10000
    assert cfg.from_dict(config.to_dict()).disk == config.disk
    assert "inodes" not in cfg.from_dict({"name": "a"}).disk.to_dict()


def test_the_flag_overrides_the_file() -> None:
    merged = cfg.merge(
        {"name": "a", "disk": {"size": "64M", "inodes": 100}},
        {"disk": {"size": None, "inodes": "2000", "backend": None}},
    )
    assert cfg.from_dict(merged).disk.inodes == 2000


@pytest.mark.parametrize("bad", [0, -5, "-5", "lots", "1.5", "10k", True, ""])
def test_bad_inode_counts_name_the_key_and_value(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        cfg.from_dict({"name": "a", "disk": {"size": "64M", "inodes": bad}})
    assert str(info.value).startswith("disk.inodes: ")
    assert repr(bad) in str(info.value)


def test_inodes_without_a_size_are_refused() -> None:
    with pytest.raises(ConfigError, match="needs a disk size") as info:
        cfg.from_dict({"name": "a", "disk": {"inodes": 500}})
    assert info.value.hint and "--disk" in info.value.hint


def test_set_parses_disk_inodes() -> None:
    request = settings.parse_request(["disk.inodes=500", "disk=128M"])
    assert request.disk_inodes == 500 and request.disk == 128 << 20
    assert settings.parse_request(["disk.inodes=7"]).touches_disk
    assert not settings.parse_request(["memory=1G"]).touches_disk
    assert "disk.inodes" in settings.known_keys()


@pytest.mark.parametrize(("value", "problem"), [("", "cannot be removed"), ("x", "whole number")])
def test_set_refuses_bad_disk_inodes(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as info:
        settings.parse_request([f"disk.inodes={value}"])
    assert info.value.key == "disk.inodes"


def test_a_bad_inode_count_from_the_backend_names_disk_inodes() -> None:
    wrapped = disk.wrap(quota.InvalidInodeLimit("an inode limit of 10 is more than ..."))
    assert type(wrapped) is UsageError and wrapped.message.startswith("disk.inodes: ")


class FakeBackend:
    name = "btrfs"
    inode_limits = False

    def __init__(self) -> None:
        self.prepared: list[tuple[Any, ...]] = []

    def prepare(self, rootfs: Path, limit_bytes: int, inodes: int | None = None) -> None:
        self.prepared.append((limit_bytes, inodes))
        rootfs.mkdir()


def _setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> tuple[Context, cfg.ContainerConfig, State, FakeBackend]:
    ctx = Context(paths=HostPaths.from_root(tmp_path))
    ctx.paths.containers.mkdir(parents=True)
    config = cfg.from_dict(
        {"name": "web", "disk": {"size": "64M", "inodes": 500, "backend": "btrfs", "mode": mode}}
    )
    fake = FakeBackend()

    def select(*args: object, inodes: bool = False, **kwargs: object) -> FakeBackend:
        if inodes:
            raise quota.QuotaUnsupported(
                "the btrfs backend cannot limit inodes: its limits count bytes, not files",
                hint="use --disk-backend project or loop for an inode limit",
            )
        return fake

    monkeypatch.setattr(quota, "select_backend", select)
    return ctx, config, State(name="web"), fake


def test_inodes_on_btrfs_fail_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, config, state, fake = _setup(tmp_path, monkeypatch, "strict")
    cdir = ctx.store.reserve("web")
    with pytest.raises(HostUnsupported, match="btrfs backend cannot limit inodes") as info:
        disk.create_rootfs(ctx, cdir, config, state)
    assert info.value.hint and "project or loop" in info.value.hint
    assert not cdir.rootfs.exists() and fake.prepared == []


def test_inodes_on_btrfs_best_effort_keep_the_size_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ctx, config, state, fake = _setup(tmp_path, monkeypatch, "best-effort")
    cdir = ctx.store.reserve("web")
    disk.create_rootfs(ctx, cdir, config, state)
    assert fake.prepared == [(64 << 20, None)]
    assert "no inode limit (best-effort)" in caplog.text
    recorded = state.disk
    assert recorded is not None
    assert recorded.backend == "btrfs" and recorded.limit_bytes == 64 << 20
    assert recorded.limit_inodes is None and "cannot limit inodes" in (recorded.unenforced or "")
