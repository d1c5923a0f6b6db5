"""netctl is a standalone package: it imports the standard library and itself only, plus
pyroute2 in the one module that talks netlink (lazily, inside functions), and importing
any of its modules loads neither richc nor pyroute2."""

from __future__ import annotations

from tests.unit.standalone import REPO, foreign_imports, loaded_after_import

MODULES = sorted(p.stem for p in (REPO / "netctl").glob("*.py"))


def test_every_module_imports_only_the_stdlib_and_itself() -> None:
    assert foreign_imports("netctl") == {"netlink.py": ["pyroute2"]}


def test_importing_every_module_loads_no_richc_nor_pyroute2() -> None:
    modules = [f"netctl.{m}" if m != "__init__" else "netctl" for m in MODULES]
    loaded = loaded_after_import(
        modules, ("richc", "lxcfs_integration", "quota", "yaml", "pyroute2")
    )
    assert loaded == []
