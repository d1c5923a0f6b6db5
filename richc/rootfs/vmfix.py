"""Fix-ups that turn a virtual machine's filesystem into one that boots in a container.

A VM's tree expects disks (fstab), NICs named by MAC address (persistent-net udev rules),
hardware to babysit (smartd, multipathd, time sync) and a NIC name from its hypervisor.
Each fix-up reads the tree and returns the edits it would make; nothing here writes until
an edit is run, so ``create --dry-run`` can print exactly what a create would do.
"""

from __future__ import annotations

import re
from pathlib import Path

from richc.config import ContainerConfig, Init
from richc.rootfs.detect import resolve_in_root
from richc.rootfs.edit import Edit, mask_edit, remove_edit, write_edit
from richc.rootfs.model import Change

BLOCK_SPECS = ("/dev/", "UUID=", "LABEL=", "PARTUUID=", "PARTLABEL=", "ID=")
# Mounted by the container runtime; a second mount from fstab fails or shadows it.
RUNTIME_MOUNTS = ("/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/sys/fs/cgroup")
FSTAB_MARK = "#richc-disabled: "
NETWORK_FS = ("nfs", "nfs4", "cifs", "smbfs", "smb3", "glusterfs", "ceph", "9p", "davfs",
              "fuse.sshfs", "fuse.glusterfs", "ocfs2", "gfs2")  # fmt: skip

# Services that watch or drive hardware a container does not have, or the host's clock.
HARDWARE_SERVICES = {
    "multipathd": "multipath disks are the host's",
    "lvm2-monitor": "LVM volumes are the host's",
    "lvm2-lvmpolld": "LVM volumes are the host's",
    "mdmonitor": "software RAID is the host's",
    "mdadm": "software RAID is the host's",
    "mdadm-shutdown": "software RAID is the host's",
    "mdmonitor-oneshot": "software RAID is the host's",
    "mdcheck_start": "software RAID is the host's",
    "mdcheck_continue": "software RAID is the host's",
    "dm-event": "device-mapper events are the host's",
    "blk-availability": "block devices are the host's",
    "smartd": "disk health (SMART) is the host's",
    "smartmontools": "disk health (SMART) is the host's",
    "irqbalance": "interrupts are the host's",
    "kdump": "kernel crash dumps are the host's",
    "kdump-tools": "kernel crash dumps are the host's",
    "kexec": "the kernel is the host's",
    "kexec-load": "the kernel is the host's",
    "chrony": "time sync: the clock is the host's",
    "chronyd": "time sync: the clock is the host's",
    "ntp": "time sync: the clock is the host's",
    "ntpd": "time sync: the clock is the host's",
    "ntpsec": "time sync: the clock is the host's",
    "openntpd": "time sync: the clock is the host's",
    "systemd-timesyncd": "time sync: the clock is the host's",
    "hwclock": "the hardware clock is the host's",
    "hwclock-save": "the hardware clock is the host's",
    "hwclock.sh": "the hardware clock is the host's",
    "acpid": "ACPI events go to the host",
    "thermald": "thermal control is the host's",
    "mcelog": "machine-check events go to the host",
    "rngd": "the hardware RNG is the host's",
    "rng-tools": "the hardware RNG is the host's",
    "lm-sensors": "hardware sensors are the host's",
    "cpufrequtils": "CPU frequency is the host's",
    "iscsid": "iSCSI disks are the host's",
    "open-iscsi": "iSCSI disks are the host's",
    "open-vm-tools": "hypervisor guest tools have no hypervisor here",
    "vmtoolsd": "hypervisor guest tools have no hypervisor here",
    "qemu-guest-agent": "hypervisor guest tools have no hypervisor here",
    "hv-kvp-daemon": "hypervisor guest tools have no hypervisor here",
    "hv-vss-daemon": "hypervisor guest tools have no hypervisor here",
    "hv-fcopy-daemon": "hypervisor guest tools have no hypervisor here",
    "hyperv-daemons": "hypervisor guest tools have no hypervisor here",
    "walinuxagent": "the Azure guest agent provisions VMs, not containers",
    "waagent": "the Azure guest agent provisions VMs, not containers",
    "google-guest-agent": "the cloud's guest agent provisions VMs, not containers",
    "cloud-init": "cloud-init provisions a VM at first boot; the container is provisioned",
    "cloud-init-local": "cloud-init provisions a VM at first boot; the container is provisioned",
    "cloud-config": "cloud-init provisions a VM at first boot; the container is provisioned",
    "cloud-final": "cloud-init provisions a VM at first boot; the container is provisioned",
    "fstrim": "TRIM is for the host's disks",
    "e2scrub_all": "e2scrub checks LVM snapshots of the host's disks",
    "e2scrub_reap": "e2scrub checks LVM snapshots of the host's disks",
}
UNIT_DIRS = ("etc/systemd/system", "lib/systemd/system", "usr/lib/systemd/system")
UNIT_SUFFIXES = (".service", ".timer", ".socket")


def _read(root: Path, relpath: str) -> str | None:
    found = resolve_in_root(root, relpath)
    if found is None or not found.is_file():
        return None
    return found.read_text(errors="replace")


def fstab(root: Path, has_network: bool = False) -> list[Edit]:
    """Comment out block devices, swap, /boot and the runtime's own mounts, and network
    filesystems when the container has no network."""
    text = _read(root, "etc/fstab")
    if text is None:
        return []
    lines, edits_needed = [], []
    for line in text.splitlines(keepends=True):
        fields = line.split()
        comment = not fields or fields[0].startswith("#")
        why = None if comment else _fstab_reason(fields, has_network)
        if why:
            lines.append(FSTAB_MARK + line)
            edits_needed.append(f"{' '.join(fields[:3])}: {why}")
        else:
            lines.append(line)
    if not edits_needed:
        return []
    new = "".join(lines)
    # One change record per line, one write of the file (the first record does it).
    first, *rest = edits_needed
    out = [write_edit("etc/fstab", new, first, keep=True, action="comment-out")]
    out += [Edit(Change("/etc/fstab", "comment-out", why), lambda _root: None) for why in rest]
    return out


def _fstab_reason(fields: list[str], has_network: bool) -> str | None:
    spec = fields[0]
    mount_point = fields[1] if len(fields) > 1 else ""
    fstype = fields[2] if len(fields) > 2 else ""
    options = fields[3].split(",") if len(fields) > 3 else []
    if not has_network and (fstype in NETWORK_FS or "_netdev" in options):
        return "a network filesystem, and the container has no network (--net none)"
    if fstype == "swap" or mount_point == "swap":
        return "swap belongs to the host"
    if mount_point == "/boot" or mount_point.startswith("/boot/"):
        return "/boot is the VM's bootloader's"
    if mount_point in RUNTIME_MOUNTS:
        return "the container runtime mounts it"
    if spec.startswith(BLOCK_SPECS) and spec not in ("/dev/shm",):
        return "a block device; the container has no disks"
    return None


def persistent_net_rules(root: Path) -> list[Edit]:
    rules = root / "etc/udev/rules.d"
    if not rules.is_dir() or rules.is_symlink():
        return []
    return [
        remove_edit(
            f"etc/udev/rules.d/{path.name}",
            "persistent-net rules name NICs by the VM's MAC addresses",
        )
        for path in sorted(rules.glob("*persistent-net*.rules"))
    ]


def unit_file(root: Path, unit: str) -> bool:
    """The unit exists in the rootfs, and its package does not already mask it."""
    for directory in UNIT_DIRS:
        path = root / directory / unit
        if path.is_symlink() and str(path.readlink()) == "/dev/null":
            return False
        if path.exists() or path.is_symlink():
            return True
    return False


def _unit_present(root: Path, unit: str) -> bool:
    return unit_file(root, unit) or any((root / "etc/systemd/system").glob(f"*.wants/{unit}"))


def is_masked(root: Path, unit: str) -> bool:
    path = root / "etc/systemd/system" / unit
    return path.is_symlink() and str(path.readlink()) == "/dev/null"


def hardware_services(root: Path, init: Init) -> list[Edit]:
    edits: list[Edit] = []
    for name, why in HARDWARE_SERVICES.items():
        if init is Init.systemd:
            for suffix in UNIT_SUFFIXES:
                unit = name + suffix
                if _unit_present(root, unit) and not is_masked(root, unit):
                    edits.append(mask_edit(unit, f"hardware service: {why}"))
        elif init is Init.sysvinit:
            edits += _sysv_disable(root, name, f"hardware service: {why}")
    return edits


def _sysv_disable(root: Path, name: str, why: str) -> list[Edit]:
    """``update-rc.d NAME disable``: S links become K links, so rc skips the start; the
    halt and reboot runlevels lose their K link, so nothing runs it at shutdown either."""
    edits = [
        remove_edit(str(link.relative_to(root)), why)
        for link in sorted(root.glob(f"etc/rc[06].d/K[0-9][0-9]{name}"))
    ]
    for link in sorted(root.glob(f"etc/rc[2-5S].d/S[0-9][0-9]{name}")):
        old = str(link.relative_to(root))
        new = str(link.with_name("K" + link.name[1:]).relative_to(root))

        def rename(rootfs: Path, old: str = old, new: str = new) -> None:
            (rootfs / old).rename(rootfs / new)

        edits.append(Edit(Change(f"/{old}", "disable", why), rename))
    return edits


# --- NIC names --------------------------------------------------------------------------

NAME_RULE = re.compile(r'NAME="([^"]+)"')
IFACE_LINE = re.compile(r"^\s*(?:iface|auto|allow-hotplug|allow-auto)\s+(.+)$", re.M)
NETWORKD_NAME = re.compile(r"^\s*Name\s*=\s*(\S+)", re.M)


def vm_nic_names(root: Path) -> list[str]:
    """The NIC names the VM's network configuration uses, in order of first mention."""
    names: list[str] = []

    def add(name: str) -> None:
        if name != "lo" and "*" not in name and name not in names:
            names.append(name)

    rules = root / "etc/udev/rules.d"
    for path in sorted(rules.glob("*persistent-net*.rules")) if rules.is_dir() else []:
        for match in NAME_RULE.finditer(path.read_text(errors="replace")):
            add(match.group(1))
    interfaces = _read(root, "etc/network/interfaces")
    for match in IFACE_LINE.finditer(interfaces or ""):
        words = match.group(1).split()
        for word in words[:1] if match.group(0).lstrip().startswith("iface") else words:
            add(word.split(":")[0])
    for path in sorted((root / "etc/systemd/network").glob("*.network")):
        for match in NETWORKD_NAME.finditer(path.read_text(errors="replace")):
            add(match.group(1))
    return names


def nic_renames(root: Path) -> dict[str, str]:
    """VM NIC name -> the container's (eth0, eth1, ...), in the VM's order."""
    names = vm_nic_names(root)
    return {old: f"eth{i}" for i, old in enumerate(names) if old != f"eth{i}"}


def _rename_words(text: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        text = re.sub(rf"(?<![\w.-]){re.escape(old)}(?![\w-])", new, text)
    return text


def network_config(root: Path, config: ContainerConfig) -> list[Edit]:
    """Rename the VM's NICs to the container's; keep ifupdown from waiting for absent ones."""
    renames = nic_renames(root)
    edits: list[Edit] = []
    has_nic = config.net.mode == "nics"
    interfaces = _read(root, "etc/network/interfaces")
    if interfaces is not None:
        new = _rename_words(interfaces, renames)
        reasons = [f"NIC {old} is {new_name} in the container" for old, new_name in renames.items()
                   if re.search(rf"(?<![\w.-]){re.escape(old)}(?![\w-])", interfaces)]  # fmt: skip
        if not has_nic:
            # `auto eth0` with no eth0 fails networking.service; hotplug waits for a NIC instead.
            hot = re.sub(r"^(\s*)auto\s+(?!lo\b)(\S+)", r"\1allow-hotplug \2", new, flags=re.M)
            if hot != new:
                reasons.append("the container has no NIC (--net none): auto -> allow-hotplug")
                new = hot
        if new != interfaces:
            edits.append(write_edit("etc/network/interfaces", new, "; ".join(reasons),
                                    keep=True, action="rewrite"))  # fmt: skip
    for path in sorted((root / "etc/systemd/network").glob("*.network")):
        text = path.read_text(errors="replace")
        new = _rename_words(text, renames)
        if new != text:
            relpath = str(path.relative_to(root))
            why = ", ".join(f"{o} -> {n}" for o, n in renames.items() if o in text)
            edits.append(write_edit(relpath, new, f"NIC names: {why}", keep=True,
                                    action="rewrite"))  # fmt: skip
    return edits


def plan(root: Path, config: ContainerConfig, init: Init) -> list[Edit]:
    """Every VM fix-up the tree at *root* needs, in the order they are applied."""
    # NIC names are read from the persistent-net rules, so rename before removing them.
    return [
        *fstab(root, has_network=config.net.mode != "none"),
        *network_config(root, config),
        *persistent_net_rules(root),
        *hardware_services(root, init),
    ]
