"""Whether a mount namespace shows a fully visible proc and sysfs, from mountinfo text."""

from __future__ import annotations

from isolation.nesting import fully_visible, hidden

HOST = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:3 - cgroup2 cgroup2 rw
26 24 0:24 / /sys/kernel/security rw,relatime shared:4 - securityfs securityfs rw
27 23 0:25 / /proc/sys/fs/binfmt_misc rw,relatime shared:13 - autofs systemd-1 rw
28 24 0:26 / /sys/fs/fuse/connections rw,relatime shared:5 - fusectl fusectl rw
"""

# A container's: /proc/sys bound read-only onto itself, a mask over /proc/kcore, lxcfs over
# /proc/meminfo, a tmpfs over /sys/firmware.
CONTAINER = """\
90 70 0:50 / / rw,relatime - overlay overlay rw
92 90 0:47 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
94 92 0:47 /sys /proc/sys ro,relatime - proc proc rw
100 92 0:6 /null /proc/kcore ro,relatime - devtmpfs devtmpfs rw
103 92 0:44 /proc/meminfo /proc/meminfo rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw
110 90 0:60 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs rw
111 110 0:61 / /sys/firmware ro,relatime - tmpfs tmpfs ro
112 110 0:62 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw
"""

NESTING = """\
120 90 0:63 / /dev rw,relatime - tmpfs none rw
121 120 0:64 / /dev/.lxc/proc rw,nosuid,nodev,noexec,relatime - proc proc rw
122 120 0:65 / /dev/.lxc/sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs rw
"""


def test_the_host_kernel_mount_points_hide_nothing() -> None:
    assert fully_visible(HOST, "proc").visible
    assert fully_visible(HOST, "sysfs").visible


def test_a_masked_container_shows_no_fully_visible_proc_or_sysfs() -> None:
    proc = fully_visible(CONTAINER, "proc")
    assert not proc.visible
    assert proc.hidden == ("/proc/sys", "/proc/kcore", "/proc/meminfo")
    sysfs = fully_visible(CONTAINER, "sysfs")
    assert not sysfs.visible and sysfs.hidden == ("/sys/firmware",)


def test_a_bind_of_part_of_proc_does_not_count() -> None:
    # The /proc/sys bind has no children, but it is not the whole filesystem.
    assert fully_visible(CONTAINER, "proc").hidden != ()


def test_the_nesting_mounts_make_both_visible() -> None:
    assert fully_visible(CONTAINER + NESTING, "proc").visible
    assert fully_visible(CONTAINER + NESTING, "sysfs").visible


def test_no_proc_at_all_is_not_visible() -> None:
    found = fully_visible("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "proc")
    assert not found.visible and found.hidden == ()


def test_escaped_mount_points() -> None:
    text = (
        "23 1 0:21 / /my\\040proc rw - proc proc rw\n"
        "24 23 0:6 /null /my\\040proc/kcore ro - devtmpfs devtmpfs rw\n"
    )
    assert fully_visible(text, "proc").hidden == ("/my proc/kcore",)


def test_hidden_says_what_covers_each_or_none() -> None:
    assert hidden(HOST) is None
    assert hidden(CONTAINER + NESTING) is None
    assert hidden(CONTAINER) == (
        "proc has mounts over /proc/sys, /proc/kcore, /proc/meminfo; "
        "sysfs has mounts over /sys/firmware"
    )
