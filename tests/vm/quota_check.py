"""The project quota backend, end to end, on ext4 (prjquota) and xfs (pquota).

Run by quota_guest.sh inside the VM; prints one ``CHECK name: ok|FAIL detail`` line per
check and a final ``QUOTA-VM-RESULT: PASS|FAIL``; exits 0 only when every check passed.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parents[2]))

import quota
from quota import fsxattr, loopdev, quotactl
from quota.mounts import MNT_DETACH, find_mount, mount, umount
from quota.registry import ProjectRegistry

MiB = 1 << 20
RICHC = Path(sys.executable).with_name("richc")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The images live in a tmpfs of our own: the guest's /tmp is capped at half its RAM, and a
# full backing store turns into EIO inside the image (xfs then shuts down).
WORK = Path("/run/quota-vm-images")
failures: list[str] = []


def check(name: str, fn: Callable[[], object]) -> None:
    start = time.monotonic()
    try:
        detail = fn()
    except Exception as exc:  # a failed check must not stop the others
        failures.append(name)
        print(f"CHECK {name}: FAIL {type(exc).__name__}: {exc}", flush=True)
        traceback.print_exc(file=sys.stdout)
        return
    extra = f" {detail}" if detail else ""
    print(f"CHECK {name}: ok ({time.monotonic() - start:.1f}s){extra}", flush=True)


def write_mib(path: Path, mib: int) -> subprocess.CompletedProcess[str]:
    # Root with CAP_SYS_RESOURCE ignores quota hard limits: write as a container root does.
    return subprocess.run(
        [
            "setpriv",
            "--inh-caps=-sys_resource",
            "--bounding-set=-sys_resource",
            "dd",
            "if=/dev/zero",
            f"of={path}",
            "bs=1M",
            f"count={mib}",
            "conv=fsync",
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def make_files(directory: Path, count: int, first: int = 1) -> subprocess.CompletedProcess[str]:
    """Create empty files one by one as a container's root would (no CAP_SYS_RESOURCE),
    stopping at the first failure; stdout says where."""
    script = (
        f'i={first}; while [ "$i" -lt {first + count} ]; do '
        # `true`, not `:`: a failed redirection on a special builtin exits dash at once.
        f'true > "{directory}/f$i" || {{ echo "stopped at $i"; exit 1; }}; i=$((i + 1)); done'
    )
    return subprocess.run(
        [
            "setpriv",
            "--inh-caps=-sys_resource",
            "--bounding-set=-sys_resource",
            "/bin/sh",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


class Filesystem:
    def __init__(self, fstype: str, size: int, mkfs: list[str], option: str) -> None:
        self.fstype = fstype
        self.option = option
        self.image = WORK / f"{fstype}.img"
        self.mnt = Path(f"/run/quota-vm-{fstype}")
        with open(self.image, "wb") as f:
            f.truncate(size)
        subprocess.run([*mkfs, str(self.image)], check=True, capture_output=True)
        self.mnt.mkdir(parents=True, exist_ok=True)

    def mount(self, options: str) -> None:
        # discard: deleted blocks go back to the tmpfs instead of piling up in the image.
        data = ",".join(o for o in (options, "discard") if o)
        with loopdev.attached(self.image) as device:
            mount(device, self.mnt, self.fstype, data=data)

    def unmount(self) -> None:
        try:
            umount(self.mnt)
        except OSError as exc:
            print(f"INFO umount {self.mnt}: {exc}; detaching it", flush=True)
            failures.append(f"{self.fstype}-umount-busy")
            umount(self.mnt, MNT_DETACH)

    def destroy(self) -> None:
        self.image.unlink()


def scenario(fs: Filesystem, unenforced_options: str) -> None:
    tag = fs.fstype

    def not_enabled() -> str:
        fs.mount(unenforced_options)
        try:
            probe = quota.probe("project", fs.mnt)
            expect(not probe.ok and probe.errno == errno.ESRCH, f"probe said {probe}")
            expect(fs.option in probe.reason and str(fs.mnt) in probe.reason, probe.reason)
            return probe.reason
        finally:
            fs.unmount()

    check(f"{tag}-not-enabled-is-explained", not_enabled)
    fs.mount(fs.option)
    store = fs.mnt / "store"
    store.mkdir()
    backend = quota.select_backend(store, "auto")
    rootfs = store / "c1" / "rootfs"
    registry = ProjectRegistry(store / "quota-projects.json")

    def auto_picks_project() -> str:
        expect(backend.name == "project", f"auto chose {backend.name}")
        return backend.name

    def prepare_and_df() -> str:
        rootfs.parent.mkdir()
        backend.prepare(rootfs, 64 * MiB)
        st = os.statvfs(rootfs)  # what df / shows inside the container
        size = st.f_blocks * st.f_frsize
        expect(size == 64 * MiB, f"statfs size {size}")
        projid, inherit = fsxattr.get_project(rootfs)
        expect(inherit and projid == registry.lookup(rootfs), f"{projid} {inherit}")
        return f"df size {size // MiB}M project {projid}"

    def write_fails() -> str:
        result = write_mib(rootfs / "big", 100)
        expect(result.returncode != 0, "100 MiB fitted under 64M")
        msg = result.stderr.strip().splitlines()[0]
        expect("Disk quota exceeded" in msg or "No space left on device" in msg, msg)
        return msg

    def usage_reported() -> str:
        usage = backend.usage(rootfs)
        expect(usage.limit_bytes == 64 * MiB, str(usage))
        expect(40 * MiB < usage.used_bytes <= 64 * MiB, str(usage))
        return str(usage)

    def resize_lets_write_pass() -> str:
        (rootfs / "big").unlink()
        backend.resize(rootfs, 128 * MiB)
        result = write_mib(rootfs / "big", 100)
        expect(result.returncode == 0, result.stderr)
        st = os.statvfs(rootfs)
        expect(st.f_blocks * st.f_frsize == 128 * MiB, "df did not follow the resize")
        return str(backend.usage(rootfs))

    def shrink_below_usage_refused() -> str:
        try:
            backend.resize(rootfs, 32 * MiB)
        except quota.QuotaExceeded as exc:
            return str(exc)
        raise AssertionError("shrinking below usage was accepted")

    def adopt_tree_with_fifo() -> str:
        tree = store / "c2" / "rootfs"
        (tree / "run").mkdir(parents=True)
        os.mkfifo(tree / "run" / "initctl")  # a project ID on a FIFO can hang: skipped
        (tree / "data").write_bytes(b"x" * MiB)
        backend.set_limit(tree, 16 * MiB)
        usage = backend.usage(tree)
        expect(usage.used_bytes >= MiB, str(usage))
        expect(registry.lookup(tree) != registry.lookup(rootfs), "IDs collide")
        return f"project {registry.lookup(tree)} {usage}"

    def remove_clears_limit_and_keeps_id_reserved() -> str:
        target = quotactl.Target.of(rootfs)
        projid = registry.lookup(rootfs)
        assert projid is not None
        backend.remove(rootfs)
        dq = quotactl.get_quota(target, projid)
        expect(dq.dqb_bhardlimit == 0 and registry.lookup(rootfs) is None, "limit left")
        # Files still carry the ID: a new tree must not get it.
        fresh = store / "c3" / "rootfs"
        fresh.parent.mkdir()
        backend.prepare(fresh, 16 * MiB)
        expect(registry.lookup(fresh) != projid, "an ID still in use was handed out again")
        backend.remove(fresh)
        backend.remove(store / "c2" / "rootfs")
        return f"freed {projid}"

    check(f"{tag}-auto-picks-project", auto_picks_project)
    check(f"{tag}-prepare-64M-df", prepare_and_df)
    check(f"{tag}-write-100M-fails", write_fails)
    check(f"{tag}-usage", usage_reported)
    check(f"{tag}-resize-128M-write-ok", resize_lets_write_pass)
    check(f"{tag}-shrink-below-usage-refused", shrink_below_usage_refused)
    check(f"{tag}-adopt-tree-with-fifo", adopt_tree_with_fifo)
    check(f"{tag}-remove", remove_clears_limit_and_keeps_id_reserved)
    inode_limits(fs, backend, store)
    print(f"INFO {tag} mount: {find_mount(fs.mnt)}", flush=True)
    containers(fs)
    if fs.fstype == "ext4":
        loop_container(fs)
    fs.unmount()
    fs.destroy()


def inode_limits(fs: Filesystem, backend: quota.QuotaBackend, store: Path) -> None:
    """An inode limit through the backend API: the kernel stops the 501st inode (ext4 with
    EDQUOT, xfs with ENOSPC), statfs shows the limit, usage counts curinodes, and a live
    change and a size-only resize behave."""
    tag = f"{fs.fstype}-inodes"
    tree = store / "c4" / "rootfs"
    full = "Disk quota exceeded" if fs.fstype == "ext4" else "No space left on device"

    def prepare_statfs() -> str:
        tree.parent.mkdir()
        backend.prepare(tree, 16 * MiB, inodes=500)
        files = os.statvfs(tree).f_files  # what df -i / shows inside the container
        expect(files == 500, f"statfs f_files {files}")
        return f"df -i size {files}"

    def files_600_fail() -> str:
        result = make_files(tree, 600)
        expect(result.returncode == 1, f"600 files fitted under 500 inodes: {result.stderr}")
        expect(full in result.stderr, result.stderr)
        stopped = int(result.stdout.split()[-1])
        expect(490 <= stopped <= 500, result.stdout)  # the tree's own directory counts
        state["stopped"] = stopped
        return f"{result.stdout.strip()}: {result.stderr.strip().splitlines()[0]}"

    def usage_counts_inodes() -> str:
        usage = backend.usage(tree)
        expect(usage.limit_inodes == 500, str(usage))
        expect(usage.used_inodes == 500, str(usage))
        return str(usage)

    def raise_live_and_keep_on_resize() -> str:
        backend.resize(tree, 16 * MiB, inodes=1000)
        result = make_files(tree, 100, first=state["stopped"])
        expect(result.returncode == 0, f"raised limit still full: {result.stderr}")
        backend.resize(tree, 32 * MiB)  # the size only: the inode limit stays
        usage = backend.usage(tree)
        expect(usage.limit_inodes == 1000 and usage.limit_bytes == 32 * MiB, str(usage))
        expect(os.statvfs(tree).f_files == 1000, "df -i did not follow the change")
        try:
            backend.resize(tree, 32 * MiB, inodes=100)
        except quota.QuotaExceeded as exc:
            return f"{usage}; {exc}"
        raise AssertionError("an inode limit below usage was accepted")

    def remove_clears_inode_limit() -> str:
        target = quotactl.Target.of(tree)
        projid = ProjectRegistry(store / "quota-projects.json").lookup(tree)
        assert projid is not None
        backend.remove(tree)
        dq = quotactl.get_quota(target, projid)
        expect(dq.dqb_ihardlimit == 0 and dq.dqb_bhardlimit == 0, "limits left")
        return f"project {projid} cleared"

    state: dict[str, int] = {}
    check(f"{tag}-prepare-500-statfs", prepare_statfs)
    check(f"{tag}-600-files-fail", files_600_fail)
    check(f"{tag}-usage", usage_counts_inodes)
    check(f"{tag}-raise-live-resize-keeps", raise_live_and_keep_on_resize)
    check(f"{tag}-remove", remove_clears_inode_limit)
    # The package checks' trees (c1 still holds 100 MiB) would leave the loop container's
    # image too little room to grow on the 256M ext4.
    for leftover in ("c1", "c2", "c3", "c4"):
        shutil.rmtree(store / leftover, ignore_errors=True)


def richc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RICHC), *args],
        env={"RICHC_ROOT": str(root), "PATH": PATH},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def richc_ok(root: Path, *args: str) -> str:
    """richc's stdout; a non-zero exit fails the check with its stderr."""
    proc = richc(root, *args)
    expect(proc.returncode == 0, f"richc {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def df_root_bytes(root: Path, name: str) -> int:
    """The size of / as `df` inside the container reports it."""
    out = richc_ok(root, "exec", name, "--", "df", "-k", "/")
    return int(out.splitlines()[-1].split()[1]) * 1024


def containers(fs: Filesystem) -> None:
    """The issue's container story with richc itself, on the project backend."""
    tag = f"{fs.fstype}-container"
    root = fs.mnt / "richc-root"
    name = "quota-vm-c1"
    state: dict[str, int] = {}

    ok = functools.partial(richc_ok, root)

    def create_df() -> str:
        # No lxcfs: it is not what is tested here, and it would keep the filesystem busy.
        # Unprivileged, as users get by default: the idmap (or the shift) must not change
        # what the project quota counts.
        ok("create", name, "--disk", "64M", "--no-lxcfs", "--net", "none", "--start")
        info = json.loads(ok("inspect", name))
        expect(info["disk"]["backend"] == "project", str(info["disk"]))
        security = info["security"]
        expect(security["privileged"] is False, str(security))
        size = df_root_bytes(root, name)
        expect(size == 64 * MiB, f"df / inside says {size}")
        return f"df / = {size // MiB}M, unprivileged, ownership {security['ownership']}"

    def dd_fails() -> str:
        proc = richc(
            root, "exec", name, "--", "dd", "if=/dev/zero", "of=/big", "bs=1M", "count=100"
        )
        expect(proc.returncode != 0, "100 MiB fitted")
        expect("Disk quota exceeded" in proc.stderr or "No space left" in proc.stderr, proc.stderr)
        return proc.stderr.strip().splitlines()[0]

    def show() -> str:
        data = json.loads(ok("quota", "show", name, "--format", "json"))
        expect(data["limit_bytes"] == 64 * MiB and data["used_bytes"] > 40 * MiB, str(data))
        registry = ProjectRegistry(root / "var/lib/richc/quota-projects.json")
        projid = registry.lookup(root / "var/lib/richc/containers" / name / "rootfs")
        expect(projid is not None, "no project ID recorded")
        state["projid"] = projid or 0
        return str(data)

    def set_live() -> str:
        ok("exec", name, "--", "rm", "/big")
        ok("set", name, "disk=128M")
        ok("exec", name, "--", "dd", "if=/dev/zero", "of=/big", "bs=1M", "count=100")
        size = df_root_bytes(root, name)
        expect(size == 128 * MiB, f"df / after set says {size}")
        return "grown live to 128M"

    def set_inodes_live() -> str:
        ok("set", name, "disk.inodes=5000")
        data = json.loads(ok("quota", "show", name, "--format", "json"))
        expect(data["limit_inodes"] == 5000 and data["limit_bytes"] == 128 * MiB, str(data))
        expect(isinstance(data["used_inodes"], int) and data["used_inodes"] > 10, str(data))
        files = int(ok("exec", name, "--", "df", "-i", "/").splitlines()[-1].split()[1])
        expect(files == 5000, f"df -i / inside says {files}")
        return f"df -i / = {files}, {data['used_inodes']} used"

    def rm_clean() -> str:
        ok("rm", "--force", name)
        target = quotactl.Target.of(fs.mnt)
        dq = quotactl.get_quota(target, state["projid"])
        expect(dq.dqb_bhardlimit == 0 and dq.dqb_ihardlimit == 0, "project limit left behind")
        expect(not (root / "var/lib/richc/containers" / name).exists(), "container dir left")
        return f"project {state['projid']} limit cleared"

    check(f"{tag}-create-64M-df", create_df)
    check(f"{tag}-dd-100M-fails", dd_fails)
    check(f"{tag}-quota-show", show)
    check(f"{tag}-set-128M-live", set_live)
    check(f"{tag}-set-inodes-live", set_inodes_live)
    check(f"{tag}-rm-leaves-no-limit", rm_clean)
    richc(root, "rm", "--force", name)  # whatever happened above
    richc(root, "lxcfs", "stop")  # in case one was started for this root


def loop_container(fs: Filesystem) -> None:
    """The loop backend's live grow: it needs CAP_SYS_RESOURCE, which the guest's root has
    and the test host's root lacks, so only here does the online path (image, loop
    capacity, EXT4_IOC_RESIZE_FS) run under a real container."""
    tag = f"{fs.fstype}-loop"
    root = fs.mnt / "richc-root-loop"
    name = "quota-vm-loop1"
    state: dict[str, str] = {}

    ok = functools.partial(richc_ok, root)

    def create_df() -> str:
        ok(
            "create",
            name,
            "--disk",
            "64M",
            "--disk-backend",
            "loop",
            "--no-lxcfs",
            "--net",
            "none",
            "--start",
        )
        info = json.loads(ok("inspect", name))
        state["pid"] = str(info["pid"])
        expect(info["security"]["privileged"] is False, str(info["security"]))
        size = df_root_bytes(root, name)
        expect(50 * MiB < size <= 64 * MiB, f"df / inside says {size}")
        return f"df / = {size // MiB}M, unprivileged, ownership {info['security']['ownership']}"

    def dd_fails() -> str:
        proc = richc(
            root, "exec", name, "--", "dd", "if=/dev/zero", "of=/big", "bs=1M", "count=100"
        )
        expect(proc.returncode != 0, "100 MiB fitted")
        expect("No space left" in proc.stderr, proc.stderr)
        return proc.stderr.strip().splitlines()[0]

    def set_live() -> str:
        ok("exec", name, "--", "rm", "/big")
        ok("set", name, "disk=128M")
        pid = str(json.loads(ok("inspect", name))["pid"])
        expect(pid == state["pid"], f"init changed from {state['pid']} to {pid}: not live")
        ok("exec", name, "--", "dd", "if=/dev/zero", "of=/big", "bs=1M", "count=100")
        size = df_root_bytes(root, name)
        expect(110 * MiB < size <= 128 * MiB, f"df / after set says {size}")
        return f"grown live to {size // MiB}M, same init pid {pid}"

    def rm_clean() -> str:
        image = root / "var/lib/richc/containers" / name / "rootfs.img"
        ok("rm", "--force", name)
        expect(not image.exists(), "image left behind")
        expect(loopdev.devices_for(image) == [], "loop device left attached")
        return "image and loop device gone"

    check(f"{tag}-create-64M-df", create_df)
    check(f"{tag}-dd-100M-fails", dd_fails)
    check(f"{tag}-set-128M-live", set_live)
    check(f"{tag}-rm-leaves-no-loop", rm_clean)
    richc(root, "rm", "--force", name)  # whatever happened above


def main() -> int:
    start = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    mount("tmpfs", WORK, "tmpfs", data="size=900m,mode=0700")
    print(f"INFO kernel {os.uname().release}", flush=True)
    try:
        ext4 = Filesystem("ext4", 256 * MiB, ["mkfs.ext4", "-q", "-O", "quota,project"], "prjquota")
        scenario(ext4, "")  # the quota feature accounts, nothing enforces
        xfs = Filesystem("xfs", 320 * MiB, ["mkfs.xfs", "-q"], "pquota")
        scenario(xfs, "pqnoenforce")
    except Exception:
        traceback.print_exc(file=sys.stdout)
        failures.append("setup")
    print(f"INFO guest checks took {time.monotonic() - start:.1f}s", flush=True)
    print(f"QUOTA-VM-RESULT: {'FAIL ' + ','.join(failures) if failures else 'PASS'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
