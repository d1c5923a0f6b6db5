"""mountinfo parsing for lxcfs detection (no root)."""

from __future__ import annotations

import pytest

from lxcfs_integration import mountinfo

SAMPLE = """\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
43 22 0:41 / /var/lib/my\\040lxcfs rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw,allow_other
98 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
102 98 0:39 /proc/meminfo /proc/meminfo rw,nosuid shared:19 - fuse.lxcfs lxcfs rw
110 102 0:45 /proc/meminfo /proc/meminfo rw,nosuid master:3 - fuse.lxcfs lxcfs rw
111 98 0:50 / /proc/uptime rw - tmpfs tmpfs rw
"""


def test_parse_fields_and_unescape() -> None:
    entries = mountinfo.parse(SAMPLE)
    assert len(entries) == 6
    home = entries[1]
    assert home.mount_point == "/var/lib/my lxcfs"
    assert home.fstype == "fuse.lxcfs" and home.is_lxcfs
    assert entries[3].root == "/proc/meminfo"
    assert entries[3].parent_id == 98
    # optional fields (shared:N, master:N) do not shift fstype
    assert entries[4].fstype == "fuse.lxcfs"


def test_lxcfs_at_counts_stacked_binds() -> None:
    entries = mountinfo.parse(SAMPLE)
    assert len(mountinfo.lxcfs_at(entries, "/proc/meminfo")) == 2
    assert mountinfo.lxcfs_at(entries, "/proc/uptime") == ()
    assert len(mountinfo.lxcfs_at(entries, "/var/lib/my lxcfs")) == 1


def test_top_at_is_the_last_listed() -> None:
    entries = mountinfo.parse(SAMPLE)
    top = mountinfo.top_at(entries, "/proc/meminfo")
    assert top is not None and top.mount_id == 110
    uptime = mountinfo.top_at(entries, "/proc/uptime")
    assert uptime is not None and not uptime.is_lxcfs
    assert mountinfo.top_at(entries, "/nowhere") is None


def test_malformed_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="malformed"):
        mountinfo.parse_line("1 2 3")
