"""isolation's renderings on the installed runtimes themselves, without richc: a busybox
container started by ``lxc-start`` (LXC 5.0) and one run by ``runc run`` (runc 1.1), each
unprivileged with the rendered id mapping, seccomp profile and masked paths, runs the
static escape probe, and nothing gets out. This is what richc's templates will render, so
a runtime that refuses a line fails here first.

Two layouts each: a plain ``dir`` rootfs, which LXC idmaps itself
(``lxc.rootfs.options = idmap=container``) and which runc 1.1, unable to, gets as an
idmapped bind made by :func:`isolation.idmount.idmapped_bind`; and an ``overlay`` shared
image (:mod:`isolation.overlay`), whose merged tree both runtimes take as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from isolation import idmap, idmount, overlay, policy, probes, seccomp

pytestmark = pytest.mark.integration

IDMAP = idmap.IdMap.of(100000)
BUSYBOX = Path("/bin/busybox")


@pytest.fixture(scope="module")
def probe() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    why = probes.can_build()
    if why:
        pytest.skip(why)
    out = Path(tempfile.mkdtemp(prefix="richc-test-probe-"))
    yield probes.build_probe(out)
    shutil.rmtree(out)


@pytest.fixture
def world(probe: Path) -> Iterator[Path]:
    """A busybox rootfs owned by host root (unshifted), the probe at /probe."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed")
    path = Path(tempfile.mkdtemp(prefix="richc-test-"))
    os.chmod(path, 0o755)
    root = path / "rootfs"
    for d in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root"):
        (root / d).mkdir(parents=True)
    os.chmod(root / "tmp", 0o1777)
    shutil.copy(BUSYBOX, root / "bin/busybox")
    for applet in ("sh", "cat", "sleep", "mount"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "sbin/init").symlink_to("../bin/busybox")
    (root / "etc/inittab").write_text("::respawn:/bin/sleep 100000\n")
    shutil.copy(probe, root / "probe")
    yield path
    shutil.rmtree(path)


@pytest.fixture(params=["dir", "overlay"])
def layout(request: pytest.FixtureRequest, world: Path) -> Iterator[tuple[Path, bool]]:
    """The rootfs a runtime gets, and whether the runtime must idmap it itself."""
    if request.param == "dir":
        yield world / "rootfs", True
        return
    upper, work, view, merged = (world / n for n in ("upper", "work", "lower", "merged"))
    for d in (upper, work, merged):
        d.mkdir()
    overlay.own_upper(upper, IDMAP)
    overlay.mount_lower_view(world / "rootfs", view, IDMAP)
    try:
        options = overlay.overlay_options([view], upper, work)
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True
        )
        try:
            yield merged, False
        finally:
            idmount.umount(merged)
    finally:
        overlay.unmount_lower_view(view)


def check_report(report: probes.ProbeReport) -> None:
    print(probes.format_table(report))
    assert report.root_host_uid == IDMAP.host_uid_start
    assert report.seccomp_mode == 2
    assert report.escapes() == []
    assert report.escapes(probes.DENIED_BY_SECCOMP) == []
    assert report.escapes(probes.PRIVILEGED_WEAK_SPOTS) == []  # a user namespace closes them
    for name in probes.MUST_BE_HIDDEN:
        assert report[name].result in ("denied", "absent"), report[name]
    assert int(report.info["pids_visible"]) <= 5  # the host's processes are invisible


def test_lxc_start_accepts_the_renderings(world: Path, layout: tuple[Path, bool]) -> None:
    if shutil.which("lxc-start") is None:
        pytest.skip("LXC is not installed")
    rootfs, needs_idmap = layout
    name = f"rt{secrets.token_hex(3)}"
    profile = world / "seccomp"
    profile.write_text(seccomp.render_lxc(seccomp.default_profile()))
    keys = [
        ("lxc.uts.name", name),
        ("lxc.rootfs.path", f"dir:{rootfs}"),
        ("lxc.init.cmd", "/sbin/init"),
        ("lxc.mount.auto", "proc:mixed sys:ro cgroup:mixed"),
        ("lxc.autodev", "1"),
        ("lxc.tty.max", "0"),
        ("lxc.net.0.type", "empty"),
        ("lxc.log.file", str(world / "lxc.log")),
        ("lxc.log.level", "WARN"),
        *policy.lxc_keys(policy.default_policy(IDMAP, runtime_idmaps_rootfs=needs_idmap), profile),
    ]
    (world / "lxc" / name).mkdir(parents=True)
    (world / "lxc" / name / "config").write_text("".join(f"{k} = {v}\n" for k, v in keys))
    lxc = ["-n", name, "-P", str(world / "lxc")]
    started = subprocess.run(["lxc-start", *lxc, "-d"], capture_output=True, text=True)
    try:
        assert started.returncode == 0, (world / "lxc.log").read_text()
        subprocess.run(["lxc-wait", *lxc, "-s", "RUNNING", "-t", "10"], check=True)
        attach = ["lxc-attach", *lxc, "--clear-env", "--"]
        done = subprocess.run(
            [*attach, "/probe", "--tmp", "/tmp"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        check_report(probes.parse_report(done.stdout))
        mounts = subprocess.run(
            [*attach, "/bin/cat", "/proc/self/mountinfo"], capture_output=True, text=True
        ).stdout
        root_line = next(line for line in mounts.splitlines() if line.split()[4] == "/")
        if needs_idmap:  # no chown: the rootfs is an idmapped mount
            assert "idmapped" in root_line
        else:  # the overlay's lower layer is
            assert " - overlay " in root_line
        assert " /proc/bus " in mounts and " /proc/timer_list " in mounts
    finally:
        subprocess.run(["lxc-stop", *lxc, "-k"], capture_output=True)
    assert os.stat(world / "rootfs/bin/busybox").st_uid == 0  # never shifted


def test_runc_accepts_the_renderings(world: Path, layout: tuple[Path, bool]) -> None:
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    rootfs, needs_idmap = layout
    bundle = world / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/probe", "--tmp", "/tmp"]
    root = bundle / "rootfs" if needs_idmap else rootfs
    config["root"] = {"path": str(root), "readonly": False}
    config["linux"]["namespaces"].append({"type": "cgroup"})
    policy.apply_oci(config, policy.default_policy(IDMAP))
    (bundle / "config.json").write_text(json.dumps(config))
    cid = f"richc-test-{secrets.token_hex(4)}"
    with contextlib.ExitStack() as stack:
        if needs_idmap:  # runc 1.1 cannot idmap the rootfs: it gets an idmapped bind
            stack.enter_context(idmount.idmapped(rootfs, bundle / "rootfs", IDMAP))
        try:
            done = subprocess.run(
                ["runc", "run", "--bundle", str(bundle), cid],
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
        finally:
            subprocess.run(["runc", "delete", "-f", cid], capture_output=True)
    assert done.returncode == 0, done.stderr
    check_report(probes.parse_report(done.stdout))
    assert os.stat(world / "rootfs/bin/busybox").st_uid == 0
