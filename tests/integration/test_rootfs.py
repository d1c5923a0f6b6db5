"""Rich rootfs on real containers: Debian with systemd and with SysV init, a legacy VM's
tarball, busybox, copies that keep what matters, and bad input.

debootstrap runs at most twice per session (systemd and sysvinit images): every test's
private --root gets its images/ directory as a symlink to one session cache. Set
RICHC_TEST_IMAGE_CACHE=DIR to keep that cache across sessions.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RichcRunner

pytestmark = pytest.mark.integration

BOOT_DEADLINE = 30.0  # the "within 30 s"


def _need_debootstrap() -> None:
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")


def inspect(richc: RichcRunner, name: str) -> dict[str, Any]:
    data = json.loads(richc("inspect", name).stdout)
    assert isinstance(data, dict)
    return data


def wait_running(richc: RichcRunner, name: str) -> str:
    """Poll `systemctl is-system-running` until it settles or the deadline passes."""
    deadline = time.monotonic() + BOOT_DEADLINE
    state = ""
    while time.monotonic() < deadline:
        proc = richc("exec", name, "--", "systemctl", "is-system-running", check=False)
        state = proc.stdout.strip()
        if state not in ("initializing", "starting", ""):
            break
        time.sleep(0.5)
    return state


def journal(rootfs: Path) -> str:
    return subprocess.run(
        ["journalctl", "-D", str(rootfs / "var/log/journal"), "--no-pager", "-o", "cat"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


CONSOLE_GETTY = "console-getty.service"


def check_console_getty(richc: RichcRunner, name: str) -> None:
    """systemd's console-getty.service runs agetty on /dev/console (getty@ttyN is masked)."""
    active = richc("exec", name, "--", "systemctl", "is-active", CONSOLE_GETTY, check=False)
    status = richc("exec", name, "--", "systemctl", "status", CONSOLE_GETTY, check=False)
    assert active.stdout.strip() == "active", status.stdout
    main = f"$(systemctl show -p MainPID --value {CONSOLE_GETTY})"
    script = f"cat /proc/{main}/comm; readlink /proc/{main}/fd/0"
    # Type=idle: the unit is active a moment before agetty itself runs.
    deadline = time.monotonic() + 10
    seen = richc("exec", name, "--", "sh", "-c", script, check=False).stdout.split()
    while seen != ["agetty", "/dev/console"] and time.monotonic() < deadline:
        time.sleep(0.3)
        seen = richc("exec", name, "--", "sh", "-c", script, check=False).stdout.split()
    assert seen == ["agetty", "/dev/console"], seen


def check_systemd_boots_and_stops(
    richc: RichcRunner, name: str, while_running: Callable[[], None] = lambda: None
) -> dict[str, Any]:
    """Boot to `running` with no failed unit, run *while_running*, then stop cleanly."""
    richc("start", name)
    state = wait_running(richc, name)
    failed = richc("exec", name, "--", "systemctl", "--failed", "--no-legend", "--plain").stdout
    assert state == "running", failed
    assert failed.strip() == ""
    assert richc("exec", name, "--", "cat", "/proc/1/comm").stdout.strip() == "systemd"
    assert richc("exec", name, "--", "hostname").stdout.strip() == name
    check_console_getty(richc, name)
    while_running()
    info = inspect(richc, name)
    # Unprivileged by default: container root is a host uid of the container's own range.
    assert info["security"]["privileged"] is False, info["security"]
    uid_map = richc("exec", name, "--", "cat", "/proc/self/uid_map").stdout.split()
    assert uid_map[:2] == ["0", info["security"]["host_ids"].split("-")[0]], uid_map
    stop = richc("stop", name, "--timeout", "10")
    assert "killed" not in stop.stderr, stop.stderr
    text = journal(Path(info["rootfs"]))
    assert "Reached target shutdown.target" in text and "Journal stopped" in text
    return info


def test_debian_systemd_boots_running_and_stops_cleanly(richc: RichcRunner, name: str) -> None:
    _need_debootstrap()
    richc("create", name, "--from", "debian:bookworm", "--memory", "512M", timeout=900)
    info = check_systemd_boots_and_stops(richc, name)
    assert info["init"] == "systemd" and info["source"] == "debian:bookworm"
    applied = {(c["action"], c["path"]) for c in info["applied"]}
    assert ("mask", "/etc/systemd/system/getty@.service") in applied
    assert ("overlay", info["rootfs"]) in applied


def test_second_debian_container_shares_the_image(
    richc: RichcRunner, name: str, richc_root: Path
) -> None:
    _need_debootstrap()
    richc("create", name, "--from", "debian:bookworm", timeout=900)  # warms the cache
    second = name + "-b"
    richc("create", second, "--from", "debian:bookworm")
    cdir = richc_root / "var/lib/richc/containers" / second
    upper = sum(p.lstat().st_size for p in (cdir / "overlay/upper").rglob("*"))
    assert upper < 1 << 20  # the container's own files only, not the ~250 MB image
    assert (cdir / "rootfs/usr/bin/dpkg").is_file()  # the whole tree is there
    # Its own identity, not the image's or the first container's.
    assert (cdir / "rootfs/etc/hostname").read_text().strip() == second
    first_id = richc_root / "var/lib/richc/containers" / name / "rootfs/etc/machine-id"
    assert (cdir / "rootfs/etc/machine-id").read_text() != first_id.read_text()
    # As after a host reboot: the overlay is gone, and start mounts it again.
    subprocess.run(["umount", str(cdir / "rootfs")], check=True)
    assert not (cdir / "rootfs/usr").exists()
    richc("start", second)
    assert richc("exec", second, "--", "cat", "/etc/hostname").stdout.strip() == second
    assert richc("exec", second, "--", "touch", "/usr/share/written-inside").returncode == 0
    assert (cdir / "overlay/upper/usr/share/written-inside").exists()
    image = richc_root / "var/lib/richc/images/debian-bookworm-systemd/rootfs"
    assert not (image / "usr/share/written-inside").exists()
    richc("rm", "--force", second)
    assert not cdir.exists()
    with open("/proc/self/mountinfo") as handle:
        assert str(cdir) not in handle.read()


NETWORKD_VM = "[Match]\nName=ens3\n\n[Network]\nAddress=192.0.2.10/24\nGateway=192.0.2.1\n"
INTERFACES_VM = (
    "auto lo\niface lo inet loopback\n\n"
    "auto ens3\niface ens3 inet static\n    address 192.0.2.10/24\n    gateway 192.0.2.1\n"
)


def _make_legacy_vm_tarball(image: Path, workdir: Path) -> Path:
    """The debootstrapped tree plus what a VM has and a container must not run."""
    tree = workdir / "vm"
    subprocess.run(["cp", "-a", f"{image}/.", str(tree)], check=True)
    with open(tree / "etc/fstab", "a") as fstab:
        fstab.write(
            "/dev/sda1 / ext4 errors=remount-ro 0 1\n"
            "UUID=0b2d5c1e-8e0e-4a52-9a4b-6f1d0c8b9e21 /boot ext4 defaults 0 2\n"
            "/dev/sda2 none swap sw 0 0\n"
        )
    rules = tree / "etc/udev/rules.d"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "70-persistent-net.rules").write_text(
        'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="52:54:00:12:34:56",'
        ' ATTR{type}=="1", KERNEL=="eth*", NAME="ens3"\n'
    )
    # A hardware service that fails wherever it runs without its hardware: if richc did
    # not mask it, `systemctl --failed` would list it.
    units = tree / "etc/systemd/system"
    (units / "smartd.service").write_text(
        "[Unit]\nDescription=SMART disk monitor (legacy VM)\n"
        "[Service]\nType=oneshot\nExecStart=/bin/false\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    (units / "multi-user.target.wants").mkdir(exist_ok=True)
    (units / "multi-user.target.wants/smartd.service").symlink_to(
        "/etc/systemd/system/smartd.service"
    )
    # The VM's own network configuration, naming its NIC as the hypervisor did.
    (tree / "etc/systemd/network").mkdir(parents=True, exist_ok=True)
    (tree / "etc/systemd/network/10-ens3.network").write_text(NETWORKD_VM)
    (tree / "etc/network").mkdir(exist_ok=True)
    (tree / "etc/network/interfaces").write_text(INTERFACES_VM)
    (tree / "etc/hostname").write_text("legacy-vm\n")
    tarball = workdir / "legacy-vm.tar.zst"  # zstd: as a VM export might be, and fast
    subprocess.run(
        ["tar", "--numeric-owner", "--xattrs", "--zstd", "-C", str(tree), "-cf", str(tarball),
         "."],
        check=True,
    )  # fmt: skip
    shutil.rmtree(tree)
    return tarball


def test_legacy_vm_tarball_is_fixed_up_and_boots(
    richc: RichcRunner, name: str, richc_root: Path, tmp_path: Path
) -> None:
    _need_debootstrap()
    richc("create", name + "-seed", "--from", "debian:bookworm", timeout=900)
    richc("rm", name + "-seed")
    image = richc_root / "var/lib/richc/images/debian-bookworm-systemd/rootfs"
    tarball = _make_legacy_vm_tarball(image, tmp_path)

    plan = json.loads(
        richc("create", name, "--from", f"tar:{tarball}", "--dry-run", "-f", "json").stdout
    )
    assert plan["init"] == "systemd"
    planned = [(c["action"], c["path"], c["reason"]) for c in plan["changes"]]
    fstab = [reason for action, path, reason in planned if path == "/etc/fstab"]
    assert any(r.startswith("/dev/sda1 / ext4") for r in fstab), fstab
    assert any(r.startswith("/dev/sda2 none swap") for r in fstab), fstab
    assert any(r.startswith("UUID=") and "/boot" in r for r in fstab), fstab
    assert ("remove", "/etc/udev/rules.d/70-persistent-net.rules") in {p[:2] for p in planned}
    assert ("mask", "/etc/systemd/system/smartd.service") in {p[:2] for p in planned}
    networkd = [(a, r) for a, path, r in planned if path == "/etc/systemd/network/10-ens3.network"]
    assert networkd == [("rewrite", "NIC names: ens3 -> eth0")], planned
    interfaces = [(a, r) for a, path, r in planned if path == "/etc/network/interfaces"]
    assert len(interfaces) == 1 and interfaces[0][0] == "rewrite", planned
    assert "NIC ens3 is eth0 in the container" in interfaces[0][1]
    containers = richc_root / "var/lib/richc/containers"
    assert not (containers / name).exists()  # a dry run touches nothing

    richc("create", name, "--from", f"tar:{tarball}", "--memory", "512M", timeout=300)

    def nic_is_renamed_inside() -> None:
        networkd = richc("exec", name, "--", "cat", "/etc/systemd/network/10-ens3.network")
        assert networkd.stdout == NETWORKD_VM.replace("ens3", "eth0")
        interfaces = richc("exec", name, "--", "cat", "/etc/network/interfaces").stdout
        assert "iface eth0 inet static" in interfaces and "ens3" not in interfaces, interfaces

    info = check_systemd_boots_and_stops(richc, name, nic_is_renamed_inside)
    applied = {(c["action"], c["path"]) for c in info["applied"]}
    assert {p[:2] for p in planned if p[0] != "create"} <= applied
    rootfs = Path(info["rootfs"])
    fstab_now = (rootfs / "etc/fstab").read_text()
    assert "\n/dev/sda1" not in fstab_now and "#richc-disabled: /dev/sda1" in fstab_now
    assert not (rootfs / "etc/udev/rules.d/70-persistent-net.rules").exists()
    assert (rootfs / ".richc/orig/etc/udev/rules.d/70-persistent-net.rules").is_file()
    assert os.readlink(rootfs / "etc/systemd/system/smartd.service") == "/dev/null"


def test_debian_sysvinit_boots_and_stops_cleanly(
    richc: RichcRunner, name: str, richc_root: Path
) -> None:
    _need_debootstrap()
    richc("create", name, "--from", "debian:bookworm", "--init", "sysvinit", timeout=900)
    richc("start", name)
    assert richc("exec", name, "--", "cat", "/proc/1/comm").stdout.strip() == "init"
    assert inspect(richc, name)["init"] == "sysvinit"
    deadline = time.monotonic() + BOOT_DEADLINE
    while time.monotonic() < deadline:
        # `runlevel` exits 1 ("unknown") until init has written utmp: keep polling.
        if richc("exec", name, "--", "runlevel", check=False).stdout.split()[-1:] == ["2"]:
            break
        time.sleep(0.5)
    processes = richc("exec", name, "--", "ps", "-eo", "args").stdout
    assert "getty --noclear 38400 console" in processes, processes
    assert "tty2" not in processes
    assert richc("exec", name, "--", "hostname").stdout.strip() == name
    stop = richc("stop", name, "--timeout", "10")
    assert "killed" not in stop.stderr, stop.stderr
    console = (richc_root / "var/log/richc" / name / "console.log").read_text(errors="replace")
    assert "Will now halt" in console  # rc 0 ran to its end: a shutdown, not a kill


def test_busybox_init_is_pid1_and_stops_cleanly(
    richc: RichcRunner, name: str, richc_root: Path
) -> None:
    richc("create", name)
    # The same tree as a dir: source: init detection finds busybox by itself.
    copy = name + "-dir"
    rootfs = richc_root / "var/lib/richc/containers" / name / "rootfs"
    richc("create", copy, "--from", f"dir:{rootfs}")
    assert inspect(richc, copy)["init"] == "busybox"
    for container in (name, copy):
        richc("start", container)
        comm = richc("exec", container, "--", "cat", "/proc/1/comm").stdout.strip()
        assert comm == "init"
        assert richc("exec", container, "--", "readlink", "/proc/1/exe").stdout.strip() in (
            "/bin/busybox",
            "/usr/bin/busybox",
        )
        stop = richc("stop", container, "--timeout", "10")
        assert "killed" not in stop.stderr


def _app_tree(root: Path) -> None:
    """An application image: busybox-static and a few applets, and no init at all."""
    for directory in ("bin", "dev", "proc", "sys", "tmp"):
        (root / directory).mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    for applet in ("sh", "sleep", "cat", "readlink"):
        (root / "bin" / applet).symlink_to("busybox")


def processes(richc: RichcRunner, name: str) -> dict[int, tuple[str, str, int]]:
    """pid -> (comm, state, ppid) of every process in the container, from its own /proc."""
    stats = richc("exec", name, "--", "sh", "-c", "cat /proc/[0-9]*/stat").stdout
    out = {}
    for line in stats.splitlines():
        pid, _, rest = line.partition(" (")
        comm, _, fields = rest.rpartition(") ")
        state, ppid = fields.split()[:2]
        out[int(pid)] = (comm, state, int(ppid))
    return out


def test_dumb_init_runs_the_command_reaps_orphans_and_stops_cleanly(
    richc: RichcRunner, name: str, tmp_path: Path
) -> None:
    tree = tmp_path / "app"
    _app_tree(tree)
    config = tmp_path / "app.yaml"
    config.write_text(f"name: {name}\nfrom: dir:{tree}\ncommand: [sleep, '1000']\n")
    richc("create", "--config", str(config), "--init", "dumb-init")
    assert inspect(richc, name)["init"] == "dumb-init"
    richc("start", name)
    exe = richc("exec", name, "--", "readlink", "/proc/1/exe").stdout.strip()
    assert exe == "/.richc/dumb-init"
    cmdline = richc("exec", name, "--", "cat", "/proc/1/cmdline").stdout
    assert cmdline.split("\0") == ["/.richc/dumb-init", "--", "sleep", "1000", ""]
    apps = [pid for pid, (comm, _, ppid) in processes(richc, name).items()
            if comm == "sleep" and ppid == 1]  # fmt: skip
    assert len(apps) == 1, processes(richc, name)
    # The exec'd shell exits at once and leaves its sleep to the reaper; the sleep's stdio
    # is not the exec's, or runc exec would wait for it to close.
    richc("exec", name, "--", "sh", "-c", "sleep 1 </dev/null >/dev/null 2>&1 & exit")
    seen = processes(richc, name)
    orphans = [pid for pid, (comm, _, _) in seen.items() if comm == "sleep" and pid != apps[0]]
    assert len(orphans) == 1 and seen[orphans[0]][2] == 1, seen
    # Unreaped, the orphan would stay in the table as a zombie of PID 1.
    deadline = time.monotonic() + 5
    while orphans[0] in seen and time.monotonic() < deadline:
        time.sleep(0.3)
        seen = processes(richc, name)
    assert orphans[0] not in seen, seen
    assert not [pid for pid, (_, state, _) in seen.items() if state == "Z"], seen
    assert apps[0] in seen  # the application itself is untouched
    stop = richc("stop", name, "--timeout", "10")
    assert "killed" not in stop.stderr, stop.stderr
    assert inspect(richc, name)["state"] == "stopped"


# --- copies keep what makes a tree bootable ------------------------------------------


def _special_tree(root: Path) -> None:
    (root / "sbin").mkdir(parents=True)
    suid = root / "sbin/tool"
    suid.write_bytes(b"#!/bin/sh\n")
    os.chown(suid, 1234, 5678)
    suid.chmod(0o4755)
    os.link(suid, root / "sbin/tool-hardlink")
    os.setxattr(root / "sbin/tool", "user.richc-test", b"kept")
    os.mknod(root / "null-device", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mkfifo(root / "fifo")
    with open(root / "sparse", "wb") as handle:
        handle.seek(64 << 20)
        handle.write(b"end")
    (root / "link").symlink_to("/sbin/tool")


def _check_special_tree(root: Path) -> None:
    tool = (root / "sbin/tool").lstat()
    assert (tool.st_uid, tool.st_gid, stat.S_IMODE(tool.st_mode)) == (1234, 5678, 0o4755)
    assert tool.st_ino == (root / "sbin/tool-hardlink").lstat().st_ino and tool.st_nlink == 2
    assert os.getxattr(root / "sbin/tool", "user.richc-test") == b"kept"
    device = (root / "null-device").lstat()
    assert stat.S_ISCHR(device.st_mode) and device.st_rdev == os.makedev(1, 3)
    assert stat.S_ISFIFO((root / "fifo").lstat().st_mode)
    sparse = (root / "sparse").lstat()
    assert sparse.st_size == (64 << 20) + 3 and sparse.st_blocks * 512 < 1 << 20
    assert os.readlink(root / "link") == "/sbin/tool"


def test_dir_and_tar_copies_keep_owners_modes_xattrs_links_devices_sparse(
    richc: RichcRunner, name: str, richc_root: Path, tmp_path: Path
) -> None:
    source = tmp_path / "tree"
    _special_tree(source)
    tarball = tmp_path / "tree.tar.xz"
    subprocess.run(
        ["tar", "--numeric-owner", "--xattrs", "--sparse", "-C", str(source), "-cJf",
         str(tarball), "."],
        check=True,
    )  # fmt: skip
    containers = richc_root / "var/lib/richc/containers"
    for suffix, spec in (("dir", f"dir:{source}"), ("tar", f"tar:{tarball}")):
        # No init in this tree: --init dumb-init runs one program under richc's reaper.
        richc("create", f"{name}-{suffix}", "--from", spec, "--init", "dumb-init")
        rootfs = containers / f"{name}-{suffix}/rootfs"
        _check_special_tree(rootfs)
        assert (rootfs / ".richc/dumb-init").stat().st_mode & 0o111


# --- bad input ------------------------------------------------------------------------


def _no_containers(root: Path) -> None:
    containers = root / "var/lib/richc/containers"
    assert not containers.exists() or not any(containers.iterdir())


@pytest.mark.parametrize(
    ("source", "message", "hint"),
    [
        ("/no/such/vm", "does not exist", "tarball"),
        ("tar:{tmp}/notatar.tar.gz", "not a readable tar archive", "tar --numeric-owner"),
        ("dir:{tmp}/noinit", "has no init", "--init dumb-init"),
        ("debian:no-such-suite", "unknown Debian suite", "debian:bookworm"),
    ],
)
def test_bad_sources_are_refused_and_leave_nothing(
    richc: RichcRunner,
    name: str,
    richc_root: Path,
    tmp_path: Path,
    source: str,
    message: str,
    hint: str,
) -> None:
    (tmp_path / "notatar.tar.gz").write_bytes(b"this is not a tarball\n" * 100)
    (tmp_path / "noinit/etc").mkdir(parents=True)
    (tmp_path / "noinit/etc/os-release").write_text("ID=empty\n")
    proc = richc("create", name, "--from", source.format(tmp=tmp_path), check=False)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "hint: " in proc.stderr and hint in proc.stderr
    assert "Traceback" not in proc.stderr
    _no_containers(richc_root)


@pytest.fixture
def small_root(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs as the --root: a copy into it runs out of space."""
    root = tmp_path / "small"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32M", "tmpfs", str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_full_disk_during_copy_is_a_clear_error(
    richc: RichcRunner, name: str, small_root: Path, tmp_path: Path
) -> None:
    source = tmp_path / "big"
    (source / "sbin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", source / "sbin/init")
    (source / "data").write_bytes(os.urandom(48 << 20))  # random: no sparse or compressed
    proc = richc(
        "create", name, "--from", f"dir:{source}", check=False,
        extra_env={"RICHC_ROOT": str(small_root)},
    )  # fmt: skip
    assert proc.returncode == 1
    assert "no space left on device" in proc.stderr and "Traceback" not in proc.stderr
    _no_containers(small_root)
    used = shutil.disk_usage(small_root).used
    assert used < 1 << 20, f"{used} bytes left behind"


@pytest.fixture
def bridge() -> Iterator[str]:
    """A private host bridge at 10.99.x.1/24 for --net bridge tests, deleted afterwards."""
    name = "rcbr" + os.urandom(4).hex()
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "10.99.7.1/24", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def test_bridged_nic_is_configured_by_each_init(
    richc: RichcRunner, name: str, bridge: str, tmp_path: Path
) -> None:
    _need_debootstrap()
    for suffix, source, address in (("bb", "busybox", "10.99.7.5"), ("sd", "debian:bookworm",
                                                                     "10.99.7.6")):  # fmt: skip
        config = tmp_path / f"{suffix}.yaml"
        config.write_text(
            f"name: {name}-{suffix}\nfrom: {source}\n"
            f"net: {{mode: bridge, bridge: {bridge}, address: {address}/24,"
            " gateway: 10.99.7.1}\n"
        )
        richc("create", "--config", str(config), "--start", timeout=900)
    # busybox's rcS configured eth0 and reaches the host's end of the bridge.
    assert "10.99.7.5/24" in richc("exec", f"{name}-bb", "--", "ip", "addr", "show", "eth0").stdout
    richc("exec", f"{name}-bb", "--", "ping", "-c", "1", "-W", "5", "10.99.7.1")
    # systemd-networkd configured the Debian container's eth0 (richc enabled it).
    wait_running(richc, f"{name}-sd")
    deadline = time.monotonic() + BOOT_DEADLINE  # networkd applies the address on its own
    while time.monotonic() < deadline:
        route = richc("exec", f"{name}-sd", "--", "ip", "route").stdout
        if "default via 10.99.7.1" in route:
            break
        time.sleep(0.5)
    assert "default via 10.99.7.1" in route
    addr = richc("exec", f"{name}-sd", "--", "ip", "-br", "addr", "show", "eth0").stdout
    assert "10.99.7.6/24" in addr
    richc("exec", f"{name}-bb", "--", "ping", "-c", "1", "-W", "5", "10.99.7.6")
