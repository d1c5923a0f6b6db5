"""The host failing under richc: a full disk during create, lxcfs killed under 20 running
containers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.conftest import RichcRunner, _require_root_and_lxc, unique_name
from tests.stress.conftest import Outcome, Timed, run_richc
from tests.stress.hostsnap import snapshot, wait_settled

pytestmark = [pytest.mark.integration, pytest.mark.stress]

SMALL_FS_MIB = 16
LOCKS = "run/richc/locks"


@pytest.fixture
def small_root(tmp_path: Path) -> Iterator[Path]:
    """A --root whose var/lib/richc is a 16 MiB ext4 on a loop device (no shared image
    cache: the busybox image is built on the small filesystem too)."""
    _require_root_and_lxc()
    image = tmp_path / "small.img"
    with image.open("wb") as handle:
        handle.truncate(SMALL_FS_MIB << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    root = tmp_path / "root"
    lib = root / "var/lib/richc"
    lib.mkdir(parents=True)
    # -o loop: mount sets up the loop device with autoclear, so the umount frees it.
    subprocess.run(["mount", "-o", "loop", str(image), str(lib)], check=True)
    try:
        yield root
    finally:
        for entry in json.loads(run_richc(root, "list", "--format", "json").stdout or "[]"):
            run_richc(root, "rm", "--force", entry["name"], timeout=120)
        run_richc(root, "lxcfs", "stop", timeout=60)
        subprocess.run(["umount", str(lib)], check=False)


def _busybox_tree(where: Path, filler_mib: int) -> Path:
    """A busybox root filesystem with *filler_mib* MiB of incompressible data in it."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    tree = where / "tree"
    for sub in ("bin", "sbin", "etc", "data"):
        (tree / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, tree / "bin/busybox")
    for applet in ("sh", "init"):
        (tree / ("sbin" if applet == "init" else "bin") / applet).symlink_to("/bin/busybox")
    with (tree / "data/filler").open("wb") as handle:
        for _ in range(filler_mib):
            handle.write(os.urandom(1 << 20))
    return tree


def _assert_left_nothing(
    root: Path, name: str, outcome: Outcome | subprocess.CompletedProcess[str]
) -> None:
    assert not (root / "var/lib/richc/containers" / name).exists()
    listed = run_richc(root, "list", "--format", "json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr


def test_create_from_a_tarball_bigger_than_the_disk(small_root: Path, tmp_path: Path) -> None:
    name = unique_name()
    tree = _busybox_tree(tmp_path, filler_mib=SMALL_FS_MIB + 8)
    tarball = tmp_path / "big.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(tarball), "."], check=True)
    before = snapshot(small_root, [name], state_ignore=[LOCKS])

    t0 = time.monotonic()
    created = run_richc(small_root, "create", name, "--from", f"tar:{tarball}")
    size = tarball.stat().st_size >> 20
    print(f"\ncreate from a {size} MiB tarball on {SMALL_FS_MIB} MiB: exit {created.returncode}")
    print(f"after {time.monotonic() - t0:.2f}s\n{created.stderr}")
    assert "Traceback" not in created.stderr, created.stderr
    assert created.returncode == 1, created.stderr
    assert created.stderr.startswith("error: "), created.stderr
    assert "no space left on device" in created.stderr.lower(), created.stderr
    _assert_left_nothing(small_root, name, created)
    after = wait_settled(small_root, [name], state_ignore=[LOCKS])
    assert before.differences(after) == {}, f"{before.describe()} -> {after.describe()}"
    # The space came back: a container that fits is created from the same kind of source.
    small = _busybox_tree(tmp_path / "small", filler_mib=1)
    run_richc(small_root, "create", name, "--from", f"dir:{small}", check=True)
    run_richc(small_root, "rm", name, check=True)


def _fill(lib: Path, leave: int) -> Path:
    filler = lib / "filler"
    free = shutil.disk_usage(lib).free
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(free - leave, 0))
        handle.flush()
        os.fsync(handle.fileno())
    return filler


def test_create_busybox_on_a_full_disk(small_root: Path, tmp_path: Path) -> None:
    """The busybox image is built on the full filesystem: it must not be left half-made."""
    name = unique_name()
    lib = small_root / "var/lib/richc"
    filler = _fill(lib, leave=256 << 10)  # the busybox image needs about 2 MiB
    before = snapshot(small_root, [name], state_ignore=[LOCKS])

    created = run_richc(small_root, "create", name, "--from", "busybox")
    print(f"\ncreate --from busybox with {shutil.disk_usage(lib).free >> 10} KiB free: "
          f"exit {created.returncode}\n{created.stderr}")  # fmt: skip
    assert "Traceback" not in created.stderr, created.stderr
    assert created.returncode == 1, created.stderr
    assert created.stderr.startswith("error: "), created.stderr
    assert "no space left on device" in created.stderr.lower(), created.stderr
    _assert_left_nothing(small_root, name, created)
    after = wait_settled(small_root, [name], state_ignore=[LOCKS])
    assert before.differences(after) == {}, f"{before.describe()} -> {after.describe()}"

    filler.unlink()
    run_richc(small_root, "create", name, "--from", "busybox", check=True)
    run_richc(small_root, "start", name, check=True)
    assert run_richc(small_root, "exec", name, "--", "cat", "/proc/1/comm").stdout.strip() == "init"
    run_richc(small_root, "rm", "--force", name, check=True)


def test_full_disk_error_names_the_full_filesystem(small_root: Path) -> None:
    _fill(small_root / "var/lib/richc", leave=256 << 10)
    created = run_richc(small_root, "create", unique_name(), "--from", "busybox")
    assert created.returncode == 1
    assert str(small_root / "var/lib/richc") in created.stderr, created.stderr


LXCFS_CONTAINERS = 20


def _mem_total_kib(timed: Timed, name: str) -> tuple[int | None, str]:
    out = timed("exec", name, "--", "head", "-n1", "/proc/meminfo")
    if out.returncode != 0:
        return None, out.stderr.strip()
    return int(out.stdout.split()[1]), out.stdout.strip()


def test_lxcfs_killed_under_20_containers_then_remount(
    timed: Timed, richc: RichcRunner, richc_root: Path
) -> None:
    names = [unique_name("richc-lxcfs") for _ in range(LXCFS_CONTAINERS)]
    limits = {n: (32 + i) << 20 for i, n in enumerate(names)}  # each its own MemTotal
    with ThreadPoolExecutor(8) as pool:

        def up(n: str) -> Outcome:
            made = timed("create", n, "--from", "busybox", "--memory", str(limits[n]))
            return made if made.returncode else timed("start", n)

        failed = [o for o in pool.map(up, names) if o.returncode]
        assert not failed, "\n".join(map(str, failed))
        pids = {n: json.loads(timed("inspect", n).stdout)["pid"] for n in names}
        seen = dict(zip(names, pool.map(lambda n: _mem_total_kib(timed, n), names), strict=True))
        assert all(seen[n][0] == limits[n] >> 10 for n in names), seen

        pidfile = richc_root / "run/richc/lxcfs/lxcfs.pid"
        lxcfs_pid = int(pidfile.read_text().strip())
        os.kill(lxcfs_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{lxcfs_pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # a zombie until its parent (init, or a reaper) collects it
        broken = dict(zip(names, pool.map(lambda n: _mem_total_kib(timed, n), names), strict=True))
        assert all(value is None for value, _ in broken.values()), broken
        assert any("Transport endpoint is not connected" in why for _, why in broken.values())

        t0 = time.monotonic()
        remount = timed("lxcfs", "remount", timeout=120)
        print(f"\nlxcfs remount of {LXCFS_CONTAINERS} containers: {time.monotonic() - t0:.2f}s")
        assert remount.returncode == 0, str(remount)
        assert "Traceback" not in remount.stderr
        healed = dict(zip(names, pool.map(lambda n: _mem_total_kib(timed, n), names), strict=True))
        assert all(healed[n][0] == limits[n] >> 10 for n in names), healed
        # Recovered in place: the same inits, and a new lxcfs.
        assert {n: json.loads(timed("inspect", n).stdout)["pid"] for n in names} == pids
        assert int(pidfile.read_text().strip()) != lxcfs_pid
        gone = [o for o in pool.map(lambda n: timed("rm", "--force", n), names) if o.returncode]
        assert not gone, "\n".join(map(str, gone))
