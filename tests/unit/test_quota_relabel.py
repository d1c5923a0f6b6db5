"""quota: which inodes a relabel touches, and backend selection logic (no root)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

import quota
from quota import fsxattr, mounts, selection


def test_relabel_skips_fifos_sockets_and_symlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int, bool]] = []
    monkeypatch.setattr(
        fsxattr,
        "set_project_fd",
        lambda fd, path, projid, inherit: calls.append((path, projid, inherit)),
    )
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root")
    os.mkfifo(tmp_path / "fifo")  # opening it for the ioctl would block
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    os.symlink("etc/passwd", tmp_path / "link")
    try:
        report = fsxattr.relabel_tree(tmp_path, 4242)
    finally:
        sock.close()
    labelled = {(os.path.relpath(p, tmp_path), i, inh) for p, i, inh in calls}
    assert labelled == {(".", 4242, True), ("etc", 4242, True), ("etc/passwd", 4242, False)}
    assert (report.labelled, report.skipped) == (3, 3)


def _failing(name: str, exc: quota.QuotaError) -> type:
    class Fake:
        def __init__(self, *args: object) -> None:
            self.name = name

        def check(self, path: object) -> None:
            raise exc

    return Fake


def test_auto_fails_closed_with_every_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selection, "fs_magic", lambda _: mounts.EXT4_SUPER_MAGIC)
    not_on = quota.QuotaNotEnabled(
        "the filesystem holding X is not mounted with prjquota", hint="add prjquota"
    )
    monkeypatch.setattr(selection, "ProjectBackend", _failing("project", not_on))
    monkeypatch.setattr(
        selection, "LoopBackend", _failing("loop", quota.QuotaUnsupported("no loop devices"))
    )
    with pytest.raises(quota.BackendUnavailable) as exc:
        selection.select_backend(tmp_path, "auto")
    message = str(exc.value)
    assert "not mounted with prjquota" in message and "no loop devices" in message
    assert set(exc.value.reasons) == {"project", "loop"} and exc.value.hint == "add prjquota"


def test_auto_prefers_the_filesystems_own_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for magic, expected in [
        (mounts.BTRFS_SUPER_MAGIC, ("btrfs", "loop")),
        (mounts.XFS_SUPER_MAGIC, ("project", "loop")),
        (mounts.TMPFS_MAGIC, ("loop",)),
    ]:
        monkeypatch.setattr(selection, "fs_magic", lambda _, m=magic: m)
        assert selection.preference(tmp_path) == expected


def test_named_backend_raises_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        selection,
        "ProjectBackend",
        _failing("project", quota.QuotaNotEnabled("not mounted with pquota")),
    )
    with pytest.raises(quota.QuotaNotEnabled, match="pquota"):
        selection.select_backend(tmp_path, "project")
    with pytest.raises(ValueError, match="unknown disk backend"):
        selection.select_backend(tmp_path, "zfs")
