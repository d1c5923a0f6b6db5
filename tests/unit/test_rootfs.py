"""Rootfs logic without root: sources, mirrors, init detection, fix-up plans, templates."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from richc.config import ContainerConfig, Init, NetConfig, NicConfig
from richc.errors import NotFound, UsageError
from richc.rootfs import plan_edits, resolve_init
from richc.rootfs import sources as src
from richc.rootfs.detect import resolve_in_root
from richc.rootfs.edit import ORIG_DIR
from richc.rootfs.inits import host_resolvers, machine_id_edit
from richc.rootfs.mirror import debian_mirror
from richc.rootfs.progress import format_line
from richc.rootfs.vmfix import fstab, hardware_services, nic_renames, plan


def config(name: str = "c1", **changes: object) -> ContainerConfig:
    return ContainerConfig(name=name).with_changes(**changes)


# --- sources ---------------------------------------------------------------------------


def test_parse_sources(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "vm.tar.zst").write_bytes(b"")
    assert src.parse("busybox").kind is src.Kind.busybox
    assert src.parse(f"dir:{tmp_path}/tree") == src.Source(src.Kind.dir, f"{tmp_path}/tree")
    assert src.parse(f"{tmp_path}/tree").kind is src.Kind.dir
    assert src.parse(f"{tmp_path}/vm.tar.zst").kind is src.Kind.tar
    assert src.parse(f"tar:{tmp_path}/vm.tar.zst").cached is False
    assert src.parse("debian:bookworm").cached is True


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("/no/such/path", NotFound, "does not exist"),
        ("debian:no-such-suite", UsageError, "unknown Debian suite"),
        ("debian:../../etc", UsageError, "unknown Debian suite"),
        ("ftp:thing", UsageError, "unknown source"),
    ],
)
def test_bad_sources(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        src.parse(text)


def test_dir_and_tar_kinds_are_checked(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        src.parse(f"dir:{tmp_path}/file")
    with pytest.raises(UsageError, match="not a file"):
        src.parse(f"tar:{tmp_path}")


def test_known_suite_uses_debootstrap_scripts(tmp_path: Path) -> None:
    (tmp_path / "bookworm").symlink_to("sid")
    (tmp_path / "sid").write_text("")
    assert src.known_suite("bookworm", tmp_path)
    assert not src.known_suite("trixie", tmp_path)
    assert not src.known_suite("../sid", tmp_path)


# --- mirror ----------------------------------------------------------------------------


def test_mirror_from_deb822(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_from_one_line_format(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] https://mirror.example/debian bookworm main\n"
    )
    assert debian_mirror(tmp_path) == "https://mirror.example/debian"


def test_no_mirror_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/x.sources").write_text(
        "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\nEnabled: no\n"
    )
    with pytest.raises(Exception, match="no Debian mirror"):
        debian_mirror(tmp_path)


# --- init detection --------------------------------------------------------------------


def usrmerged(root: Path) -> Path:
    for name in ("usr/sbin", "usr/bin", "usr/lib/systemd", "etc"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for link in ("sbin", "bin", "lib"):
        (root / link).symlink_to(f"usr/{link}")
    return root


def test_resolve_in_root_never_leaves_the_root(tmp_path: Path) -> None:
    root = usrmerged(tmp_path / "r")
    (root / "usr/lib/systemd/systemd").write_bytes(b"\x7fELF")
    (root / "usr/sbin/init").symlink_to("/lib/systemd/systemd")
    assert resolve_in_root(root, "sbin/init") == root / "usr/lib/systemd/systemd"
    (root / "etc/escape").symlink_to("/../../../../etc/passwd")
    assert resolve_in_root(root, "etc/escape") is None  # no etc/passwd inside the root
    (root / "etc/loop").symlink_to("loop")
    assert resolve_in_root(root, "etc/loop") is None


@pytest.mark.parametrize(
    ("init_link", "content", "expected"),
    [
        ("/lib/systemd/systemd", None, Init.systemd),
        ("/bin/busybox", None, Init.busybox),
        (None, b"\x7fELF ... /etc/inittab ... INIT_VERSION", Init.sysvinit),
        (None, b"\x7fELF ... BusyBox v1.35", Init.busybox),
    ],
)
def test_detect_init(
    tmp_path: Path, init_link: str | None, content: bytes | None, expected: Init
) -> None:
    root = usrmerged(tmp_path / "r")
    (root / "usr/lib/systemd/systemd").write_bytes(b"\x7fELF")
    (root / "usr/bin/busybox").write_bytes(b"\x7fELF")
    if init_link:
        (root / "usr/sbin/init").symlink_to(init_link)
    else:
        (root / "usr/sbin/init").write_bytes(content or b"")
    assert resolve_init(root, Init.auto) is expected


def test_no_init_points_at_dumb_init(tmp_path: Path) -> None:
    root = usrmerged(tmp_path / "r")
    with pytest.raises(UsageError) as caught:
        resolve_init(root, Init.auto)
    assert "no init" in caught.value.message and "--init dumb-init" in (caught.value.hint or "")
    assert resolve_init(root, Init.dumb_init) is Init.dumb_init


def test_asked_for_init_must_be_there(tmp_path: Path) -> None:
    root = usrmerged(tmp_path / "r")
    (root / "usr/sbin/init").write_bytes(b"... /etc/inittab ...")
    with pytest.raises(UsageError, match="no systemd"):
        resolve_init(root, Init.systemd)
    with pytest.raises(UsageError, match="is sysvinit"):
        resolve_init(root, Init.busybox)
    assert resolve_init(root, Init.sysvinit) is Init.sysvinit


# --- VM fix-ups ------------------------------------------------------------------------

VM_FSTAB = """\
# /etc/fstab: static file system information.
UUID=1b6e-aa / ext4 errors=remount-ro 0 1
/dev/sda1 /boot ext4 defaults 0 2
/dev/mapper/vg-swap none swap sw 0 0
proc /proc proc defaults 0 0
tmpfs /var/cache/app tmpfs size=64m 0 0
nfs.example:/export /srv/data nfs defaults 0 0
"""


def vm_tree(root: Path) -> Path:
    usrmerged(root)
    (root / "etc/fstab").write_text(VM_FSTAB)
    rules = root / "etc/udev/rules.d"
    rules.mkdir(parents=True)
    (rules / "70-persistent-net.rules").write_text(
        'SUBSYSTEM=="net", ATTR{address}=="52:54:00:aa:bb:cc", NAME="ens3"\n'
        'SUBSYSTEM=="net", ATTR{address}=="52:54:00:aa:bb:cd", NAME="ens4"\n'
    )
    (root / "etc/network").mkdir()
    (root / "etc/network/interfaces").write_text(
        "auto lo\niface lo inet loopback\n\nauto ens3\niface ens3 inet dhcp\n"
        "iface ens3:1 inet static\n    address 10.0.0.2/24\n"
    )
    units = root / "etc/systemd/system"
    (units / "multi-user.target.wants").mkdir(parents=True)
    (units / "smartd.service").write_text("[Service]\nExecStart=/usr/sbin/smartd -n\n")
    (units / "multi-user.target.wants/smartd.service").symlink_to(units / "smartd.service")
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    (root / "usr/lib/systemd/system/multipathd.service").write_text("[Service]\n")
    (root / "usr/lib/systemd/system/hwclock.service").symlink_to("/dev/null")
    return root


def test_fstab_plan_comments_out_disks_swap_boot_and_runtime_mounts(tmp_path: Path) -> None:
    root = vm_tree(tmp_path / "r")
    assert len(fstab(root, has_network=True)) == 4  # nfs stays where there is a network
    edits = fstab(root)
    reasons = [e.change.reason for e in edits]
    assert len(edits) == 5
    assert any(r.startswith("nfs.example:/export") and "no network" in r for r in reasons)
    assert reasons[0].startswith("UUID=1b6e-aa / ext4") and "block device" in reasons[0]
    assert any(r.startswith("/dev/sda1 /boot") for r in reasons)
    assert any(r.startswith("/dev/mapper/vg-swap none swap") for r in reasons)
    assert any(r.startswith("proc /proc") for r in reasons)
    assert (root / "etc/fstab").read_text() == VM_FSTAB  # planning writes nothing
    for edit in edits:
        edit.run(root)
    text = (root / "etc/fstab").read_text()
    assert "\ntmpfs /var/cache/app" in text and "\n#richc-disabled: nfs.example" in text
    assert "\n#richc-disabled: /dev/sda1 /boot" in text and "\nUUID=" not in text
    assert (root / ORIG_DIR / "etc/fstab").read_text() == VM_FSTAB


def test_nic_names_are_renamed_in_vm_order(tmp_path: Path) -> None:
    root = vm_tree(tmp_path / "r")
    assert nic_renames(root) == {"ens3": "eth0", "ens4": "eth1"}


def test_vm_plan_lists_each_fixup_and_applies_it(tmp_path: Path) -> None:
    root = vm_tree(tmp_path / "r")
    edits = plan(root, config(), Init.systemd)
    changes = [(e.change.action, e.change.path) for e in edits]
    assert ("remove", "/etc/udev/rules.d/70-persistent-net.rules") in changes
    assert ("mask", "/etc/systemd/system/smartd.service") in changes
    assert ("mask", "/etc/systemd/system/multipathd.service") in changes
    assert ("mask", "/etc/systemd/system/hwclock.service") not in changes  # already masked
    assert ("rewrite", "/etc/network/interfaces") in changes
    for edit in edits:
        edit.run(root)
    interfaces = (root / "etc/network/interfaces").read_text()
    # No NIC with --net none: ifupdown must not wait for (and fail on) eth0.
    assert "allow-hotplug eth0\niface eth0 inet dhcp" in interfaces
    assert "iface eth0:1 inet static" in interfaces and "ens3" not in interfaces
    assert "auto lo" in interfaces
    assert os.readlink(root / "etc/systemd/system/smartd.service") == "/dev/null"
    assert (root / ORIG_DIR / "etc/systemd/system/smartd.service").is_file()
    assert not (root / "etc/udev/rules.d/70-persistent-net.rules").exists()


def test_bridged_container_keeps_auto_for_its_nic(tmp_path: Path) -> None:
    root = vm_tree(tmp_path / "r")
    for edit in plan(
        root, config(net=NetConfig(mode="nics", nics=(NicConfig(bridge="br0"),))), Init.systemd
    ):
        edit.run(root)
    assert "auto eth0\niface eth0 inet dhcp" in (root / "etc/network/interfaces").read_text()


def test_sysvinit_hardware_services_are_disabled(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for rc in ("rc2.d", "rc0.d", "rcS.d"):
        (root / "etc" / rc).mkdir(parents=True)
    (root / "etc/rc2.d/S01smartmontools").symlink_to("../init.d/smartmontools")
    (root / "etc/rc0.d/K01smartmontools").symlink_to("../init.d/smartmontools")
    (root / "etc/rcS.d/S01hwclock.sh").symlink_to("../init.d/hwclock.sh")
    edits = hardware_services(root, Init.sysvinit)
    for edit in edits:
        edit.run(root)
    assert sorted(p.name for p in (root / "etc/rc2.d").iterdir()) == ["K01smartmontools"]
    assert not any((root / "etc/rc0.d").iterdir())
    assert [p.name for p in (root / "etc/rcS.d").iterdir()] == ["K01hwclock.sh"]


# --- per-init files --------------------------------------------------------------------


def test_systemd_plan_masks_container_units_and_adds_dropin(tmp_path: Path) -> None:
    root = usrmerged(tmp_path / "r")
    system = root / "usr/lib/systemd/system"
    system.mkdir(parents=True)
    for unit in ("getty@.service", "systemd-udevd.service", "systemd-networkd.service"):
        (system / unit).write_text("[Unit]\n")
    (root / "usr/sbin/init").symlink_to("/lib/systemd/systemd")
    (root / "usr/lib/systemd/systemd").write_bytes(b"")
    edits = plan_edits(root, config(stop_timeout=10), Init.systemd, fresh=True)
    by_path = {e.change.path: e for e in edits}
    assert by_path["/etc/systemd/system/getty@.service"].change.action == "mask"
    assert "/etc/systemd/system/systemd-udevd.service" in by_path
    assert "/etc/systemd/system/serial-getty@.service" not in by_path  # not installed
    assert "/etc/systemd/network/80-richc-eth0.network" not in by_path  # --net none
    for edit in edits:
        edit.run(root)
    dropin = (root / "etc/systemd/system.conf.d/richc.conf").read_text()
    assert "DefaultTimeoutStopSec=7s" in dropin
    assert (root / "etc/hostname").read_text().strip() == "c1"
    assert len((root / "etc/machine-id").read_text().strip()) == 32


def test_systemd_networkd_for_a_bridged_container(tmp_path: Path) -> None:
    root = usrmerged(tmp_path / "r")
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    (root / "usr/lib/systemd/system/systemd-networkd.service").write_text("")
    net = NetConfig(
        mode="nics", nics=(NicConfig(bridge="br0", ip="10.0.3.5/24", gateway="10.0.3.1"),)
    )
    for edit in plan_edits(root, config(net=net), Init.systemd, fresh=True):
        edit.run(root)
    network = (root / "etc/systemd/network/80-richc-eth0.network").read_text()
    assert "Name=eth0" in network and "Address=10.0.3.5/24" in network
    assert "Gateway=10.0.3.1" in network
    wants = root / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
    assert os.readlink(wants) == "/lib/systemd/system/systemd-networkd.service"


def test_sysvinit_inittab_halts_on_sigpwr_with_one_console_getty(tmp_path: Path) -> None:
    root = usrmerged(tmp_path / "r")
    (root / "usr/sbin/getty").write_bytes(b"")
    (root / "etc/inittab").write_text(
        "id:3:initdefault:\npf::powerwait:/etc/init.d/powerfail start\n"
        "1:2345:respawn:/sbin/getty 38400 tty1\n2:23:respawn:/sbin/getty 38400 tty2\n"
    )
    for edit in plan_edits(root, config(), Init.sysvinit, fresh=False):
        edit.run(root)
    inittab = (root / "etc/inittab").read_text()
    lines = [line for line in inittab.splitlines() if line and not line.startswith("#")]
    assert "id:3:initdefault:" in lines  # the VM's runlevel is kept
    assert "pf::powerwait:/sbin/init 0" in lines
    gettys = [line for line in lines if "getty" in line]
    assert gettys == ["co:2345:respawn:/sbin/getty --noclear 38400 console"]
    assert "powerfail" in (root / ORIG_DIR / "etc/inittab").read_text()


def test_machine_id_is_kept_for_a_vm_and_new_for_an_image(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    assert machine_id_edit(tmp_path, fresh=False) is None
    assert machine_id_edit(tmp_path, fresh=True) is not None
    (tmp_path / "etc/machine-id").write_text("uninitialized\n")
    assert machine_id_edit(tmp_path, fresh=False) is not None


def test_host_resolvers_skip_loopback_stubs(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch example.org\n")
    assert host_resolvers(conf) == (["10.1.1.1"], ["search example.org"])


def test_env_values_are_escaped(tmp_path: Path) -> None:
    env = (("QUOTE", 'say "hi" $HOME `x`'),)
    for edit in plan_edits(usrmerged(tmp_path), config(env=env), Init.dumb_init, fresh=False):
        if edit.change.path != "/.richc/dumb-init":
            edit.run(tmp_path)
    assert (
        "export QUOTE='say \"hi\" $HOME `x`'"
        in (tmp_path / "etc/profile.d/richc-env.sh").read_text()
    )
    assert 'QUOTE="say \\"hi\\" $HOME `x`"' in (tmp_path / "etc/environment").read_text()


def test_edits_do_not_write_through_symlinks_out_of_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "host-hostname"
    outside.write_text("host\n")
    root = usrmerged(tmp_path / "r")
    (root / "etc/hostname").symlink_to(outside)
    for edit in plan_edits(root, config(), Init.dumb_init, fresh=False):
        if edit.change.path != "/.richc/dumb-init":
            edit.run(root)
    assert outside.read_text() == "host\n"
    assert (root / "etc/hostname").read_text() == "c1\n"


def test_progress_line() -> None:
    line = format_line("copying", 50 << 20, 100 << 20, 1.0)
    assert "50%" in line and "[" + "#" * 14 in line
    assert format_line("debootstrap", 3 << 20, None, 12.0) == "debootstrap 3.0 MiB (12 s)"


def test_tarball_plan_reads_only_what_fixups_need(tmp_path: Path) -> None:
    from richc.paths import HostPaths
    from richc.rootfs.planning import plan as plan_rootfs

    root = vm_tree(tmp_path / "vm")
    (root / "usr/lib/systemd/systemd").write_bytes(b"")
    (root / "usr/sbin/init").symlink_to("/lib/systemd/systemd")
    (root / "usr/share/big").mkdir(parents=True)
    (root / "usr/share/big/blob").write_bytes(b"x" * 4096)
    tarball = tmp_path / "vm.tar.gz"
    subprocess.run(["tar", "-C", str(root), "-czf", str(tarball), "."], check=True)
    paths = HostPaths(tmp_path / "host")
    init, changes = plan_rootfs(config(source=f"tar:{tarball}"), paths, tmp_path / "rootfs")
    assert init is Init.systemd
    actions = [(c.action, c.path) for c in changes]
    assert actions[0] == ("extract", str(tmp_path / "rootfs"))
    assert ("mask", "/etc/systemd/system/smartd.service") in actions
    assert sum(1 for a in actions if a == ("comment-out", "/etc/fstab")) == 5
    assert not (tmp_path / "rootfs").exists() and not (tmp_path / "host").exists()


def test_busybox_plan(tmp_path: Path) -> None:
    from richc.paths import HostPaths
    from richc.rootfs.planning import plan as plan_rootfs

    init, changes = plan_rootfs(config(), HostPaths(tmp_path), tmp_path / "rootfs")
    assert init is Init.busybox
    assert ("write", "/etc/inittab") in [(c.action, c.path) for c in changes]


def test_busybox_rcs_asks_dhcp_only_on_an_operators_bridge_without_an_address() -> None:
    from richc.templating import render

    # A static address (and a managed network's) is set by the runtime: no DHCP client.
    static = NetConfig(
        mode="nics", nics=(NicConfig(bridge="br0", ip="10.0.3.5/24", gateway="10.0.3.1"),)
    )
    assert "udhcpc" not in render("rootfs/busybox/rcS.j2", name="c1", net=static)
    dhcp = render(
        "rootfs/busybox/rcS.j2",
        name="c1",
        net=NetConfig(mode="nics", nics=(NicConfig(bridge="b"),)),
    )
    assert "udhcpc -b -i eth0 -s /etc/udhcpc.script" in dhcp
    assert "eth0" not in render("rootfs/busybox/rcS.j2", name="c1", net=NetConfig())


def test_progress_counts_what_our_child_writes(tmp_path: Path) -> None:
    from richc.rootfs import progress

    script = (
        f"open({str(tmp_path / 'out')!r}, 'wb').write(b'x' * (1 << 20)); import sys; "
        "sys.stdin.read()"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE)
    try:
        for _ in range(1000):  # until the write happened; the child then waits for stdin
            if progress._children_written() >= 1 << 20:
                break
            time.sleep(0.01)
        assert progress._children_written() >= 1 << 20
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()


def test_a_vm_keeps_its_own_network_config_when_bridged(tmp_path: Path) -> None:
    root = vm_tree(tmp_path / "r")
    (root / "usr/lib/systemd/system/systemd-networkd.service").write_text("")
    bridged = config(net=NetConfig(mode="nics", nics=(NicConfig(bridge="br0"),)))
    paths = [e.change.path for e in plan_edits(root, bridged, Init.systemd, fresh=False)]
    assert "/etc/systemd/network/80-richc-eth0.network" not in paths
    assert "/etc/network/interfaces" in paths  # renamed, not replaced


def test_a_dir_source_must_not_contain_the_store(tmp_path: Path) -> None:
    store = tmp_path / "var/lib/richc/containers"
    store.mkdir(parents=True)
    with pytest.raises(UsageError, match="contains richc's containers"):
        src.check_outside(src.parse(str(tmp_path)), store)
    (tmp_path / "vm").mkdir()
    src.check_outside(src.parse(str(tmp_path / "vm")), store)
