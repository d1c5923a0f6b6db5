"""Fixtures for integration tests: a private --root, unique names, and a richc runner that
removes every container it saw when the test ends, pass or fail."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

RICHC = Path(sys.executable).with_name("richc")


def _require_root_and_lxc() -> None:
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    if shutil.which("lxc-start") is None:
        pytest.skip("LXC is not installed (apt-get install lxc)")


def unique_name(prefix: str = "richc-test") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture
def name() -> str:
    return unique_name()


RichcRunner = Callable[..., subprocess.CompletedProcess[str]]


def on_runc(richc: RichcRunner) -> RichcRunner:
    """*richc*, creating every container on the runc runtime: how the *_runtimes.py files
    run another file's tests again on runc."""
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed (apt-get install runc)")

    def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if args and args[0] == "create":
            args = ("create", "--runtime", "runc", *args[1:])
        return richc(*args, **kwargs)

    return run


@pytest.fixture(scope="session")
def image_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One images/ directory for the whole session, so debootstrap runs once per image.

    Set RICHC_TEST_IMAGE_CACHE=DIR to keep it across sessions.
    """
    kept = os.environ.get("RICHC_TEST_IMAGE_CACHE")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        yield Path(kept)
        return
    cache = tmp_path_factory.mktemp("richc-images")
    yield cache
    shutil.rmtree(cache, ignore_errors=True)


@contextlib.contextmanager
def private_root(image_cache: Path) -> Iterator[Path]:
    """A private root whose images/ is the session's shared image cache.

    It lives directly below /tmp (mode 0711), not in pytest's tmp_path: an unprivileged
    container's root must walk down to its rootfs (LXC and runc set it up as that user),
    and pytest makes its base directory 0700 again whenever a session starts.
    """
    top = Path(tempfile.mkdtemp(prefix="richc-test-root-"))
    top.chmod(0o711)
    root = top / "root"
    (root / "var/lib/richc").mkdir(parents=True)
    (root / "var/lib/richc/images").symlink_to(image_cache)
    # The VM tests' guests set this: their suites test limits and quotas, not networks,
    # and a bridge per test under software emulation costs time for nothing.
    default_net = os.environ.get("RICHC_TEST_DEFAULT_NET")
    if default_net:
        (root / "etc/richc").mkdir(parents=True)
        (root / "etc/richc/richc.yaml").write_text(f"network: {default_net}\n")
    yield root
    # Removed only when nothing is mounted below it any more (the richc fixture's rm
    # --force ran first): never delete through a leftover mount.
    with open("/proc/self/mountinfo") as handle:
        mounted = any(f" {top}/" in line for line in handle)
    if not mounted:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def richc_root(image_cache: Path) -> Iterator[Path]:
    with private_root(image_cache) as root:
        yield root


@pytest.fixture
def richc(richc_root: Path) -> Iterator[RichcRunner]:
    """Run the installed `richc` as a subprocess under a private root.

    ``richc("exec", name, "--", "ps", check=False)`` returns the CompletedProcess; with the
    default ``check=True`` a non-zero exit fails the test and shows stderr.
    """
    _require_root_and_lxc()
    env = dict(os.environ, RICHC_ROOT=str(richc_root))

    def run(
        *args: str,
        check: bool = True,
        timeout: float = 300,
        input: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(RICHC), *args],
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"richc {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    yield run
    containers = richc_root / "var/lib/richc/containers"
    if containers.is_dir():
        for entry in sorted(containers.iterdir()):
            if entry.is_dir():
                run("rm", "--force", entry.name, check=False, timeout=120)
        leftovers = [e.name for e in containers.iterdir() if e.is_dir()]
        # New busybox and debian containers join the default network, made on first use:
        # its bridge, dnsmasq and nftables table go with the root.
        networks = richc_root / "var/lib/richc/networks"
        if networks.is_dir() and any(networks.iterdir()):
            names = sorted(n.name for n in networks.iterdir() if n.is_dir())
            run("network", "rm", "--force", *names, check=False, timeout=60)
        # `richc start` runs an lxcfs on the root's own home (ROOT/var/lib/lxcfs by default):
        # stop it by its pid file and detach its mount.
        if (richc_root / "run/richc/lxcfs").is_dir():
            run("lxcfs", "stop", check=False, timeout=60)
        assert not leftovers, f"rm --force left containers behind: {leftovers}"
