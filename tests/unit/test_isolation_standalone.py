"""isolation is a standalone package (issue 17): it imports the standard library and itself
only, in its source (lazy imports included) and on a fresh interpreter."""

from __future__ import annotations

from tests.unit.standalone import REPO, foreign_imports, loaded_after_import

MODULES = sorted(p.stem for p in (REPO / "isolation").glob("*.py"))


def test_every_module_imports_only_the_stdlib_and_itself() -> None:
    assert foreign_imports("isolation") == {}


def test_importing_every_module_loads_no_richc_module() -> None:
    modules = [f"isolation.{m}" if m != "__init__" else "isolation" for m in MODULES]
    assert (
        loaded_after_import(modules, ("richc", "quota", "lxcfs_integration", "netctl", "yaml"))
        == []
    )
