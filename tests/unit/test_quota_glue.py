"""richc.disk: how quota errors reach the user, and the fail-closed / best-effort choice."""

from __future__ import annotations

from pathlib import Path

import pytest

import quota
from richc import config as cfg
from richc.context import Context
from richc.errors import Conflict, HostUnsupported, NotFound, RichcError, UsageError
from richc.hostres import disk
from richc.paths import HostPaths
from richc.state import State


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (quota.InvalidLimit("a disk limit of 64T is larger than ..."), UsageError),
        (quota.QuotaNotEnabled("not mounted with prjquota", hint="remount"), HostUnsupported),
        (quota.KernelTooOld("kernel too old"), HostUnsupported),
        (quota.QuotaUnsupported("no quota on tmpfs"), HostUnsupported),
        (quota.BackendUnavailable("no backend"), HostUnsupported),
        (quota.QuotaExceeded("already holds 100M"), Conflict),
        (quota.ResizeUnsupported("cannot shrink"), Conflict),
        (quota.NotManaged("no quota recorded"), NotFound),
        (OSError(5, "I/O error"), RichcError),
    ],
)
def test_wrap_maps_each_quota_error_to_a_typed_richc_error(
    exc: OSError, kind: type[RichcError]
) -> None:
    wrapped = disk.wrap(exc)
    assert type(wrapped) is kind
    if isinstance(exc, quota.QuotaError):
        assert exc.message in wrapped.message
    if isinstance(wrapped, HostUnsupported):
        assert wrapped.hint  # the quota hint, or the best-effort / other-backend advice
    if isinstance(exc, quota.InvalidLimit):
        assert wrapped.message.startswith("disk.size: ")


def test_only_limited_containers_drop_cap_sys_resource() -> None:
    limited = cfg.from_dict({"name": "a", "disk": {"size": "64M"}})
    assert disk.cap_drop(limited) == ("sys_resource",)
    assert disk.cap_drop(cfg.from_dict({"name": "a"})) == ()


def _setup(tmp_path: Path, mode: str) -> tuple[Context, cfg.ContainerConfig, State]:
    ctx = Context(paths=HostPaths.from_root(tmp_path))
    ctx.paths.containers.mkdir(parents=True)
    config = cfg.from_dict({"name": "web", "disk": {"size": "64M", "mode": mode}})
    return ctx, config, State(name="web")


def _no_backend(*args: object, **kwargs: object) -> quota.QuotaBackend:
    raise quota.QuotaNotEnabled("the filesystem holding X is not mounted with prjquota")


def test_strict_mode_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, config, state = _setup(tmp_path, "strict")
    monkeypatch.setattr(quota, "select_backend", _no_backend)
    cdir = ctx.store.reserve("web")
    with pytest.raises(HostUnsupported, match="not mounted with prjquota"):
        disk.create_rootfs(ctx, cdir, config, state)
    assert not cdir.rootfs.exists()


def test_best_effort_warns_and_records_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ctx, config, state = _setup(tmp_path, "best-effort")
    monkeypatch.setattr(quota, "select_backend", _no_backend)
    cdir = ctx.store.reserve("web")
    disk.create_rootfs(ctx, cdir, config, state)
    assert cdir.rootfs.is_dir()
    assert "without a disk limit" in caplog.text
    assert state.disk is not None and state.disk.backend is None
    assert "prjquota" in (state.disk.unenforced or "")
    assert disk.view(ctx, cdir, state)["limit_bytes"] is None
