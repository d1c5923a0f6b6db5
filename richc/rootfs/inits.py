"""What each init needs in the rootfs to boot as PID 1 of a container and stop cleanly."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

from richc.config import ContainerConfig, Init
from richc.errors import HostUnsupported
from richc.rootfs.detect import resolve_in_root
from richc.rootfs.edit import Edit, mask_edit, symlink, write_edit
from richc.rootfs.model import Change
from richc.rootfs.vmfix import is_masked, unit_file, vm_nic_names
from richc.templating import render

# Units that cannot work in a container, or do the host's job; masked so none of them fails.
CONTAINER_MASKS = {
    "systemd-udevd.service": "udev: the host manages devices",
    "systemd-udevd-control.socket": "udev: the host manages devices",
    "systemd-udevd-kernel.socket": "udev: the host manages devices",
    "systemd-udev-trigger.service": "udev: the host manages devices",
    "systemd-udev-settle.service": "udev: the host manages devices",
    "systemd-hwdb-update.service": "udev: the host manages devices",
    "systemd-modules-load.service": "kernel modules are the host's",
    "kmod-static-nodes.service": "kernel modules are the host's",
    "getty@.service": "gettys on ttys: a container has none (console-getty runs on /dev/console)",
    "serial-getty@.service": "serial gettys: a container has no serial port",
    "systemd-fsck-root.service": "fsck: the container has no block devices",
    "systemd-fsck@.service": "fsck: the container has no block devices",
    "systemd-remount-fs.service": "the container runtime mounts the root filesystem",
    "swap.target": "swap belongs to the host",
    "systemd-binfmt.service": "binfmt_misc is the host's",
    "proc-sys-fs-binfmt_misc.automount": "binfmt_misc is the host's",
    "proc-sys-fs-binfmt_misc.mount": "binfmt_misc is the host's",
    "sys-kernel-config.mount": "kernel filesystems are the host's",
    "sys-kernel-debug.mount": "kernel filesystems are the host's",
    "sys-kernel-tracing.mount": "kernel filesystems are the host's",
    "sys-fs-fuse-connections.mount": "kernel filesystems are the host's",
    "dev-hugepages.mount": "kernel filesystems are the host's",
    "systemd-pstore.service": "the kernel's pstore is the host's",
}
TINI_CANDIDATES = ("/usr/bin/tini-static", "/usr/local/bin/tini-static")
# richc.spec runs /.richc/dumb-init for --init dumb-init. The binary is tini-static: static, so
# it runs in any rootfs, and it takes the same `-- CMD ARGS` argv (Debian's dumb-init is dynamic).
REAPER = ".richc/dumb-init"
INITDEFAULT = re.compile(r"^[^#:]*:(\d):initdefault:", re.M)
# Reserve this much of richc's stop timeout for systemd's own final steps.
STOP_MARGIN = 3


def wants_own_network(root: Path, config: ContainerConfig) -> bool:
    """richc configures eth0 itself only for a NIC the rootfs has no configuration for: a
    migrated VM keeps its own (static addresses, routes), with its NIC names renamed."""
    nics = config.net.nics
    # A NIC on a managed network is configured by the runtime (address and route from
    # richc's allocation); only an operator's bridge may need the guest's own DHCP client.
    return bool(nics) and nics[0].bridge is not None and not vm_nic_names(root)


def systemd_edits(root: Path, config: ContainerConfig) -> list[Edit]:
    edits = [
        mask_edit(unit, why)
        for unit, why in CONTAINER_MASKS.items()
        if unit_file(root, unit) and not is_masked(root, unit)
    ]
    timeout = max(config.stop_timeout - STOP_MARGIN, 1)
    edits.append(
        write_edit(
            "etc/systemd/system.conf.d/richc.conf",
            render(
                "rootfs/systemd/system.conf.j2",
                name=config.name,
                stop_timeout=config.stop_timeout,
                unit_stop_timeout=timeout,
            ),
            f"drop-in: units get {timeout} s to stop, inside richc's stop timeout",
        )
    )
    if wants_own_network(root, config) and unit_file(root, "systemd-networkd.service"):
        edits += _networkd(config)
    return edits


def _networkd(config: ContainerConfig) -> list[Edit]:
    text = render(
        "rootfs/network/networkd.network.j2",
        address=config.net.nics[0].ip,
        gateway=config.net.nics[0].gateway,
    )
    links = {
        "etc/systemd/system/multi-user.target.wants/systemd-networkd.service":
            "/lib/systemd/system/systemd-networkd.service",
        "etc/systemd/system/sockets.target.wants/systemd-networkd.socket":
            "/lib/systemd/system/systemd-networkd.socket",
    }  # fmt: skip
    edits = [write_edit("etc/systemd/network/80-richc-eth0.network", text, "configure eth0")]
    for link, target in links.items():

        def enable(root: Path, link: str = link, target: str = target) -> None:
            symlink(root, link, target)

        edits.append(Edit(Change(f"/{link}", "enable", "systemd-networkd brings up eth0"), enable))
    return edits


def _getty(root: Path) -> str | None:
    for candidate in ("sbin/getty", "sbin/agetty"):
        if resolve_in_root(root, candidate) is not None:
            return "/" + candidate
    return None


def sysvinit_edits(root: Path, config: ContainerConfig) -> list[Edit]:
    old = resolve_in_root(root, "etc/inittab")
    match = INITDEFAULT.search(old.read_text(errors="replace")) if old and old.is_file() else None
    runlevel = match.group(1) if match and match.group(1) not in "016" else "2"
    text = render(
        "rootfs/sysvinit/inittab.j2",
        name=config.name,
        runlevel=runlevel,
        getty=_getty(root),
    )
    edits = [
        write_edit(
            "etc/inittab",
            text,
            "SIGPWR (richc stop) halts; one getty on the console, none on ttys",
            keep=True,
        )
    ]
    if wants_own_network(root, config) and resolve_in_root(root, "sbin/ifup") is not None:
        edits.append(
            write_edit(
                "etc/network/interfaces",
                render(
                    "rootfs/network/interfaces.j2",
                    name=config.name,
                    nic=True,
                    address=config.net.nics[0].ip,
                    gateway=config.net.nics[0].gateway,
                ),
                "configure eth0 (ifupdown)",
                keep=True,
            )
        )
    return edits


def find_reaper() -> Path:
    for candidate in TINI_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    raise HostUnsupported(
        "--init dumb-init needs a static reaper, and tini-static is not installed",
        hint="install it with `apt-get install tini`",
    )


def reaper_edit() -> Edit:
    reaper = find_reaper()

    def copy(root: Path) -> None:
        target = root / REAPER
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(reaper, target)
        target.chmod(0o755)

    return Edit(Change(f"/{REAPER}", "write", f"PID 1 reaper ({reaper.name})"), copy)


def machine_id_edit(root: Path, fresh: bool) -> Edit | None:
    """A machine id of its own: for every container from an image, or where the VM had none."""
    current = root / "etc/machine-id"
    try:
        text = current.read_text().strip() if current.is_file() else ""
    except OSError:
        text = ""
    if not fresh and re.fullmatch(r"[0-9a-f]{32}", text):
        return None
    return write_edit(
        "etc/machine-id",
        uuid.uuid4().hex + "\n",
        "a machine id of its own (journal, D-Bus)",
        mode=0o444,
        keep=not fresh,
    )


def host_resolvers(path: Path = Path("/etc/resolv.conf")) -> tuple[list[str], list[str]]:
    """The host's nameservers that a container can reach (not a loopback stub) and options."""
    servers, options = [], []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return [], []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            if not words[1].startswith(("127.", "::1")):
                servers.append(words[1])
        elif words and words[0] in ("search", "domain", "options"):
            options.append(" ".join(words))
    return servers, options


def resolv_edit(root: Path, fresh: bool) -> Edit | None:
    existing = root / "etc/resolv.conf"
    if not fresh and (existing.exists() or existing.is_symlink()):
        return None  # a migrated VM keeps its own resolver configuration
    servers, options = host_resolvers()
    if not servers:
        return None
    text = render("rootfs/common/resolv.conf.j2", nameservers=servers, options=options)
    return write_edit("etc/resolv.conf", text, "resolvers from the host", keep=not fresh)


def init_edits(root: Path, config: ContainerConfig, init: Init, fresh: bool) -> list[Edit]:
    """The per-init files and fix-ups, plus machine id and resolvers."""
    edits: list[Edit] = []
    if init is Init.systemd:
        edits += systemd_edits(root, config)
    elif init is Init.sysvinit:
        edits += sysvinit_edits(root, config)
    elif init is Init.dumb_init:
        edits.append(reaper_edit())
    for extra in (machine_id_edit(root, fresh), resolv_edit(root, fresh)):
        if extra is not None:
            edits.append(extra)
    return edits
