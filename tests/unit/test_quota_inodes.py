"""Inode limits in the quota package: the quotactl struct, validation, and which backends
refuse them. What the kernel does with them is tested in the VM and on loop images."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

import quota
from quota import backend, loop, quotactl, selection, tools
from quota.btrfs import BtrfsBackend
from quota.loop import LoopBackend
from quota.mounts import Mount
from quota.project import ProjectBackend

MiB = 1 << 20


def test_if_dqblk_layout_matches_linux_quota_h() -> None:
    # struct if_dqblk: eight __u64 then __u32 dqb_valid, padded to 72 bytes on x86-64.
    offsets = {
        name: getattr(quotactl.IfDqblk, name).offset for name, _ in quotactl.IfDqblk._fields_
    }
    assert offsets == {
        "dqb_bhardlimit": 0,
        "dqb_bsoftlimit": 8,
        "dqb_curspace": 16,
        "dqb_ihardlimit": 24,
        "dqb_isoftlimit": 32,
        "dqb_curinodes": 40,
        "dqb_btime": 48,
        "dqb_itime": 56,
        "dqb_valid": 64,
    }
    assert ctypes.sizeof(quotactl.IfDqblk) == 72
    assert (quotactl.QIF_BLIMITS, quotactl.QIF_ILIMITS, quotactl.QIF_LIMITS) == (1, 4, 5)


def test_limits_struct_sets_block_and_inode_limits() -> None:
    dq = quotactl.limits_struct(64 * MiB + 1, 500)
    assert dq.dqb_bhardlimit == dq.dqb_bsoftlimit == 64 * 1024 + 1  # rounded up to 1 KiB
    assert dq.dqb_ihardlimit == dq.dqb_isoftlimit == 500
    assert dq.dqb_valid == quotactl.QIF_BLIMITS | quotactl.QIF_ILIMITS
    assert dq.dqb_curspace == dq.dqb_curinodes == 0


def test_limits_struct_without_inodes_leaves_the_inode_limit_alone() -> None:
    dq = quotactl.limits_struct(64 * MiB, None)
    assert dq.dqb_valid == quotactl.QIF_BLIMITS  # the kernel ignores the inode fields
    cleared = quotactl.limits_struct(0, 0)
    assert cleared.dqb_valid == quotactl.QIF_LIMITS
    assert cleared.dqb_bhardlimit == cleared.dqb_ihardlimit == 0


def test_set_limits_sends_q_setquota_for_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, quotactl.IfDqblk]] = []

    def fake_call(target: object, cmd: int, id_: int, buf: quotactl.IfDqblk) -> None:
        calls.append((cmd, id_, buf))

    monkeypatch.setattr(quotactl, "_call", fake_call)
    mount = Mount(1, 254, 0, "/", "/mnt", ("rw",), "ext4", "/dev/vda", ("prjquota",))
    target = quotactl.Target(mount, 0, "/mnt")
    quotactl.set_limits(target, 100_001, 16 * MiB, 2000)
    ((cmd, projid, dq),) = calls
    assert cmd == (quotactl.Q_SETQUOTA << 8) | quotactl.PRJQUOTA and projid == 100_001
    assert dq.dqb_ihardlimit == 2000 and dq.dqb_valid == quotactl.QIF_LIMITS


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "100", 2**32])
def test_bad_inode_limits_are_refused(bad: object) -> None:
    with pytest.raises(quota.InvalidInodeLimit, match="inode limit"):
        backend.validate_inodes(bad)  # type: ignore[arg-type]


def test_good_inode_limits_pass() -> None:
    backend.validate_inodes(None)
    backend.validate_inodes(1)
    backend.validate_inodes(2**32 - 1)


def test_inodes_below_usage_is_edquot() -> None:
    backend.refuse_inodes_below_usage("/r", None, 10**6)
    backend.refuse_inodes_below_usage("/r", 500, 500)
    with pytest.raises(quota.QuotaExceeded, match="600 inodes"):
        backend.refuse_inodes_below_usage("/r", 500, 600)


def test_which_backends_limit_inodes() -> None:
    assert ProjectBackend("/nonexistent/r.json").inode_limits
    assert LoopBackend().inode_limits
    assert not BtrfsBackend().inode_limits


def test_btrfs_refuses_an_inode_limit_before_touching_anything(tmp_path: Path) -> None:
    rootfs = tmp_path / "c1" / "rootfs"
    with pytest.raises(quota.QuotaUnsupported) as info:
        BtrfsBackend().prepare(rootfs, 64 * MiB, inodes=1000)
    assert "btrfs backend cannot limit inodes" in info.value.message
    assert info.value.hint and "project or loop" in info.value.hint
    assert not rootfs.parent.exists()


def test_naming_btrfs_with_inodes_fails_and_auto_skips_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(quota.QuotaUnsupported, match="btrfs backend cannot limit inodes"):
        quota.select_backend(tmp_path, "btrfs", inodes=True)
    monkeypatch.setattr(selection, "preference", lambda path: ("btrfs", "loop"))
    monkeypatch.setattr(BtrfsBackend, "check", lambda self, path: None)
    monkeypatch.setattr(LoopBackend, "check", lambda self, path: None)
    assert quota.select_backend(tmp_path, "auto").name == "btrfs"
    assert quota.select_backend(tmp_path, "auto", inodes=True).name == "loop"


def test_loop_inode_cap_is_one_per_kib() -> None:
    assert loop.max_inodes(64 * MiB) == 65536
    assert loop.max_inodes(1 << 50) == 2**32 - 1


def test_make_ext4_fixes_the_inode_count(monkeypatch: pytest.MonkeyPatch) -> None:
    argvs: list[list[str]] = []
    monkeypatch.setattr(tools, "run_tool", lambda argv, ok=(0,): argvs.append(argv) or "")
    tools.make_ext4("/img", label="c1", inodes=2000)
    tools.make_ext4("/img")
    assert argvs[0][-3:] == ["-N", "2000", "/img"]
    assert "-N" not in argvs[1]


def test_project_usage_reports_inodes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dq = quotactl.IfDqblk()
    dq.dqb_bhardlimit, dq.dqb_curspace = 64 * 1024, 5 * MiB
    dq.dqb_ihardlimit, dq.dqb_curinodes = 500, 42
    project = ProjectBackend(tmp_path / "r.json")
    monkeypatch.setattr(project, "_project", lambda rootfs: (None, 100_000))
    monkeypatch.setattr(quotactl, "get_quota", lambda target, projid: dq)
    assert project.usage(tmp_path) == quota.Usage(64 * MiB, 5 * MiB, 500, 42)
    dq.dqb_ihardlimit = 0  # no inode limit: null, but the count is still known
    assert project.usage(tmp_path) == quota.Usage(64 * MiB, 5 * MiB, None, 42)
