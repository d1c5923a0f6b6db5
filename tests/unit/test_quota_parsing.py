"""quota: mountinfo parsing, limits, sizes and error types (no root needed)."""

from __future__ import annotations

import ctypes
import errno
from pathlib import Path

import pytest

import quota
from quota import backend, btrfsctl, fsxattr, loopdev, quotactl
from quota.mounts import find_mount, parse_mountinfo

MOUNTINFO = r"""22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /srv/store rw,relatime shared:5 - xfs /dev/sdb1 rw,attr2,inode64,prjquota
31 30 0:26 / /srv/store/with\040space rw - ext4 /dev/loop3 rw,prjquota
32 22 0:27 / /data rw - btrfs /dev/sdc rw,space_cache=v2,subvolid=5
33 22 0:28 / /data rw - tmpfs tmpfs rw
"""


def test_mountinfo_fields_and_escapes() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.mount_point for m in mounts][:3] == ["/", "/srv/store", "/srv/store/with space"]
    xfs = mounts[1]
    assert (xfs.fstype, xfs.source, xfs.major, xfs.minor) == ("xfs", "/dev/sdb1", 0, 25)
    assert xfs.has_option("prjquota") and not mounts[0].has_option("prjquota")


def test_find_mount_takes_longest_prefix_and_topmost(tmp_path: Path) -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert find_mount("/srv/store/containers/a", mounts).fstype == "xfs"
    assert find_mount("/srv/store/with space/x", mounts).source == "/dev/loop3"
    assert find_mount("/srv/storeX", mounts).mount_point == "/"
    # Two mounts stacked on /data: the later line is on top.
    assert find_mount("/data/x", mounts).fstype == "tmpfs"


def test_ioctl_numbers_match_the_kernel_headers() -> None:
    # Values as the C preprocessor computes them on x86-64 from the uapi headers.
    assert fsxattr.FS_IOC_FSGETXATTR == 0x801C581F
    assert fsxattr.FS_IOC_FSSETXATTR == 0x401C5820
    assert btrfsctl.BTRFS_IOC_SUBVOL_CREATE == 0x5000940E
    assert btrfsctl.BTRFS_IOC_SNAP_DESTROY == 0x5000940F
    assert btrfsctl.BTRFS_IOC_QUOTA_CTL == 0xC0109428
    assert btrfsctl.BTRFS_IOC_QGROUP_LIMIT == 0x8030942B
    assert btrfsctl.BTRFS_IOC_TREE_SEARCH == 0xD0009411
    assert quotactl.qcmd(quotactl.Q_GETQUOTA, quotactl.PRJQUOTA) == 0x80000702
    assert ctypes.sizeof(quotactl.IfDqblk) == 72
    assert ctypes.sizeof(quotactl.FsQuotaStat) == 80
    assert ctypes.sizeof(loopdev.LoopInfo64) == 232
    assert ctypes.sizeof(loopdev.LoopConfig) == 304
    assert ctypes.sizeof(btrfsctl.SearchArgs) == 4096


@pytest.mark.parametrize("bad", [0, -5 << 30])
def test_non_positive_limits_are_refused(tmp_path: Path, bad: int) -> None:
    with pytest.raises(quota.InvalidLimit, match="must be positive") as exc:
        backend.validate_limit(bad, tmp_path)
    assert exc.value.errno == errno.EINVAL


def test_limit_larger_than_the_filesystem_is_refused(tmp_path: Path) -> None:
    total, _ = backend.fs_size(tmp_path)
    with pytest.raises(quota.InvalidLimit, match="larger than"):
        backend.validate_limit(total + (1 << 30), tmp_path)
    backend.validate_limit(1 << 20, tmp_path)


def test_below_minimum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(quota.InvalidLimit, match="minimum of 16M"):
        backend.validate_limit(1 << 20, tmp_path, minimum=16 << 20)


def test_errors_are_oserrors_with_distinct_errnos() -> None:
    cases = {
        quota.KernelTooOld("x"): errno.ENOSYS,
        quota.QuotaUnsupported("x"): errno.EOPNOTSUPP,
        quota.QuotaNotEnabled("x"): errno.ESRCH,
        quota.QuotaExceeded("x"): errno.EDQUOT,
        quota.InvalidLimit("x"): errno.EINVAL,
    }
    for exc, number in cases.items():
        assert isinstance(exc, OSError) and exc.errno == number and str(exc) == "x"
    assert quota.QuotaNotEnabled("m", "/p", hint="h").hint == "h"


def test_refuse_below_usage_raises_edquot(tmp_path: Path) -> None:
    with pytest.raises(quota.QuotaExceeded, match="already holds 2M, more than the limit of 1M"):
        backend.refuse_below_usage(tmp_path, 1 << 20, 2 << 20)
    backend.refuse_below_usage(tmp_path, 2 << 20, 2 << 20)


def test_human_sizes() -> None:
    assert [backend.human(n) for n in (512, 1 << 20, 3 << 29, 64 << 20)] == [
        "512B",
        "1M",
        "1.5G",
        "64M",
    ]


def test_ext4_as_an_unloaded_module_counts(tmp_path: Path) -> None:
    # A VM kernel whose ext4 is a module nobody loaded yet: mount(2) loads it on demand.
    import os

    from quota.loop import kernel_has_filesystem

    proc, modules = tmp_path / "proc", tmp_path / "modules"
    proc.mkdir()
    (proc / "filesystems").write_text("nodev\tproc\nnodev\toverlay\n\tbtrfs\n")
    release = modules / os.uname().release
    release.mkdir(parents=True)
    (release / "modules.alias").write_text("alias fs-xfs xfs\nalias fs-ext4 ext4\n")
    assert kernel_has_filesystem("btrfs", proc, modules)
    assert kernel_has_filesystem("ext4", proc, modules)
    assert not kernel_has_filesystem("ext3", proc, modules)
    (release / "modules.alias").unlink()
    assert not kernel_has_filesystem("ext4", proc, modules)
