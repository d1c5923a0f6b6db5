"""Masked and read-only paths and their LXC and OCI renderings."""

from __future__ import annotations

from isolation.masked import MASKED, READONLY, Kind, lxc_mount_entries, oci_paths


def test_podman_defaults_are_all_there() -> None:
    masked = {m.path for m in MASKED}
    assert {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/acpi", "/sys/firmware",
            "/sys/devices/virtual/powercap", "/proc/scsi"} <= masked  # fmt: skip
    assert {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"} <= {
        r.path for r in READONLY
    }
    assert all(item.reason for item in MASKED + READONLY)


def test_lxc_entries() -> None:
    lines = [value for key, value in lxc_mount_entries()]
    assert {key for key, _ in lxc_mount_entries()} == {"lxc.mount.entry"}
    assert "/dev/null proc/kcore none bind,ro,optional 0 0" in lines
    assert "tmpfs sys/firmware tmpfs ro,nosuid,nodev,noexec,mode=0555,size=4k,optional 0 0" in lines
    assert "proc/irq proc/irq none bind,ro,relative,optional 0 0" in lines
    # proc:mixed does /proc/sys (keeping net writable) and sysrq-trigger already
    assert not any(line.startswith("proc/sys ") for line in lines)
    assert not any("sysrq" in line for line in lines)
    # every line may be missing on some kernel, and every line is a relative target
    assert all("optional" in line and not line.split()[1].startswith("/") for line in lines)
    # read-only binds come before masks
    relative = [i for i, line in enumerate(lines) if "relative" in line]
    assert relative == list(range(len(relative)))


def test_lxc_entries_without_proc_mixed_cover_proc_sys() -> None:
    lines = [value for _, value in lxc_mount_entries(proc_mixed=False)]
    assert "proc/sys proc/sys none bind,ro,relative,optional 0 0" in lines
    assert "proc/sysrq-trigger proc/sysrq-trigger none bind,ro,relative,optional 0 0" in lines


def test_oci_paths() -> None:
    paths = oci_paths()
    assert paths["maskedPaths"] == [m.path for m in MASKED]
    assert "/proc/sys" in paths["readonlyPaths"]
    assert all(m.kind in (Kind.FILE, Kind.DIR) for m in MASKED)
