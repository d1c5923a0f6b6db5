"""LVM volume groups inside a guest image: listed, activated read-only and released.

Every LVM command gets a --config that limits it to the image's devices (so it never
touches the host's own volume groups, its devices file or its metadata backups in
/etc/lvm) and that works without udev. Listing uses ``--readonly``, which reads metadata
without device-mapper; activating needs device-mapper. ``vgchange --readonly`` refuses to
activate anything ("Operation prohibited while --readonly is set"), so read-only
activation goes through ``activation/read_only_volume_list`` instead, on top of the
read-only loop devices underneath.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from vmimport.errors import HostUnsupported, VmImportError
from vmimport.tools import have_tools, run

DM_CONTROL = "/dev/mapper/control"
LVM_TOOLS = ("vgs", "lvs", "vgchange")


@dataclass(frozen=True)
class LogicalVolume:
    vg: str
    lv: str
    dm_path: str  # /dev/mapper/VG-LV, with dashes in names doubled
    path: str  # /dev/VG/LV


def _quote_list(items: list[str]) -> str:
    return "[" + ",".join(json.dumps(item) for item in items) + "]"


def lvm_config(devices: list[str], read_only_vgs: list[str] | None = None) -> str:
    """The --config for commands that must see only *devices* (the image's PVs)."""
    accept = [f"a|^{device}$|" for device in devices] + ["r|.*|"]
    parts = [
        "devices {"
        f" filter={_quote_list(accept)} global_filter={_quote_list(accept)}"
        " use_devicesfile=0 obtain_device_list_from_udev=0 scan_lvs=0 }",
        # No udev here: LVM makes the /dev/mapper nodes itself and waits for no one.
        "activation { udev_sync=0 udev_rules=0 verify_udev_operations=1 monitoring=0"
        + (f" read_only_volume_list={_quote_list(read_only_vgs)}" if read_only_vgs else "")
        + " }",
        "global { use_lvmpolld=0 }",
        "backup { backup=0 archive=0 }",
    ]
    return " ".join(parts)


def host_support(dm_control: str = DM_CONTROL) -> None:
    """Raise HostUnsupported unless LVM volumes can be activated here."""
    missing = have_tools(*LVM_TOOLS)
    if missing:
        raise HostUnsupported(
            f"the image holds LVM volumes but the LVM tools are missing ({', '.join(missing)})",
            hint="apt-get install lvm2",
        )
    if not device_mapper_available():
        raise HostUnsupported(
            "the image holds LVM volumes but this kernel has no device-mapper",
            dm_control,
            hint="modprobe dm_mod (or use a host whose kernel has CONFIG_BLK_DEV_DM); "
            "or convert the guest's logical volumes to plain images on a host that has it",
        )
    if not os.path.exists(dm_control):
        raise HostUnsupported(
            f"the kernel has device-mapper but {dm_control} is missing",
            dm_control,
            hint="dmsetup mknodes",
        )


def device_mapper_available(proc_misc: str = "/proc/misc") -> bool:
    """Whether the kernel has registered device-mapper's control device. The node in
    /dev/mapper alone proves nothing: installing lvm2 makes it even where opening it
    then fails with ENODEV."""
    try:
        with open(proc_misc) as f:
            return any(line.split()[1:] == ["device-mapper"] for line in f)
    except OSError:
        return False


def parse_report(text: str, kind: str) -> list[dict[str, str]]:
    """The rows of ``--reportformat json`` output for *kind* ("vg", "lv", "pv")."""
    rows: list[dict[str, str]] = []
    for report in json.loads(text).get("report", []):
        rows.extend(report.get(kind, []))
    return rows


def _report(command: str, fields: str, config: str) -> list[dict[str, str]]:
    # --readonly reads metadata without device-mapper and without taking locks.
    argv = [command, "--readonly", "--reportformat", "json", "-o", fields, "--config", config]
    return parse_report(run(argv), command[:2])


def volume_groups(devices: list[str]) -> list[str]:
    """Names of the volume groups whose PVs are among *devices* (no device-mapper needed)."""
    return sorted({row["vg_name"] for row in _report("vgs", "vg_name", lvm_config(devices))})


def logical_volumes(devices: list[str]) -> list[LogicalVolume]:
    rows = _report("lvs", "vg_name,lv_name,lv_dm_path,lv_path", lvm_config(devices))
    return [
        LogicalVolume(row["vg_name"], row["lv_name"], row["lv_dm_path"], row["lv_path"])
        for row in rows
    ]


def host_volume_groups(exclude: list[str]) -> list[str]:
    """The volume groups of PVs other than *exclude* (the image's): the host's own.

    Told apart by device number, not by a reject filter: LVM accepts a device when any
    one of its names (/dev/loop3p2, /dev/block/259:1, ...) passes the filter.
    """
    ours = {os.stat(device).st_rdev for device in exclude}
    found = set()
    for row in _report("pvs", "pv_name,vg_name", "devices { use_devicesfile=0 }"):
        try:
            if os.stat(row["pv_name"]).st_rdev in ours:
                continue
        except OSError:
            pass  # a PV that has gone away is not ours either
        if row.get("vg_name"):
            found.add(row["vg_name"])
    return sorted(found)


def check_names(image_vgs: list[str], host_vgs: list[str]) -> None:
    """Two volume groups of one name cannot be active at once: refuse a clash."""
    clash = sorted(set(image_vgs) & set(host_vgs))
    if clash:
        raise VmImportError(
            f"the image's volume group {', '.join(clash)} has the same name as one of the host's",
            hint="rename it on a copy of the image first (vgimportclone), or import on a host "
            "without that volume group",
        )


def activate(vgs: list[str], devices: list[str]) -> None:
    """Activate *vgs*, every logical volume read-only."""
    config = lvm_config(devices, read_only_vgs=vgs)
    run(["vgchange", "--activate", "y", "--ignoremonitoring", "--config", config, *vgs])


def deactivate(vgs: list[str], devices: list[str]) -> None:
    run(["vgchange", "--activate", "n", "--config", lvm_config(devices), *vgs])
