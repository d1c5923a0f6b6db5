"""The live runtime checks, with import and PATH lookups replaced."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from richc.probe import HostReport, choose_runtime, features, host_features, probe_host
from richc.probe.tools import probe_lxc, probe_tools
from tests.fixtures.hosts.support import HOSTS, probe_fixture


def failing_import(name: str) -> types.ModuleType:
    raise ImportError(f"No module named {name!r}")


def no_library(soname: str) -> object:
    raise OSError(f"{soname}: cannot open shared object file")


def test_bindings_that_import() -> None:
    module = types.ModuleType("lxc")
    module.version = "5.0.2"  # type: ignore[attr-defined]
    bindings = probe_lxc(import_module=lambda name: module, load_library=lambda soname: object())
    assert bindings.loaded and bindings.version == "5.0.2" and bindings.error is None


def test_bindings_that_fail_say_why() -> None:
    bindings = probe_lxc(import_module=failing_import, load_library=no_library)
    assert not bindings.loaded and not bindings.liblxc
    assert bindings.error == "ImportError: No module named 'lxc'"


def test_a_binding_that_raises_something_else_is_not_loaded() -> None:
    def broken(name: str) -> types.ModuleType:
        raise OSError("liblxc.so.1: undefined symbol")

    assert probe_lxc(import_module=broken, load_library=lambda s: object()).error == (
        "OSError: liblxc.so.1: undefined symbol"
    )


def test_tools_are_looked_up_and_versioned() -> None:
    def which(name: str) -> Path | None:
        return Path("/usr/sbin/runc") if name == "runc" else None

    tools = probe_tools(
        import_module=failing_import,
        load_library=no_library,
        which=which,
        version=lambda path: f"{path.name} version 9",
    )
    assert tools.runc.path == "/usr/sbin/runc" and tools.runc.version == "runc version 9"
    assert not tools.crun.present and tools.crun.version is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("linux-3.10-rhel7", "runc"),
        ("linux-4.19-buster", "runc"),
        ("linux-5.10-bullseye", "runc"),
        ("linux-6.18-host", "runc"),
    ],
)
def test_auto_falls_back_to_runc_without_bindings(host: str, expected: str) -> None:
    assert features(probe_fixture(host, lxc=False)).runtime == expected


def test_nothing_to_run_with() -> None:
    feats = features(probe_fixture("linux-5.10-bullseye", lxc=False, runc=False, crun=False))
    assert feats.runtime is None and feats.runtime_binary is None


def test_kernel_only_probe_skips_the_live_checks() -> None:
    probe = probe_host(HOSTS / "linux-5.10-bullseye", live=False)
    assert probe.runtimes is None
    assert choose_runtime(probe).runtime is None
    feats = host_features(str(HOSTS / "linux-5.10-bullseye"))
    assert feats.cgroup_version == 2 and feats.use_cgroup_ns and feats.runtime is None
    with pytest.raises(ValueError, match="live runtime checks"):
        HostReport.of(probe)
