"""lxcfs_integration is a standalone package: it imports the standard library and itself only.

Checked on the source (every import statement, top level or inside functions) and on a
fresh interpreter, so a lazy ``from richc ...`` inside a function is caught too.
"""

from __future__ import annotations

from tests.unit.standalone import foreign_imports, imported_roots, loaded_after_import


def test_every_module_imports_only_the_stdlib_and_itself() -> None:
    assert foreign_imports("lxcfs_integration") == {}


def test_the_checker_sees_a_lazy_import() -> None:
    assert "richc" in imported_roots("def f():\n    from richc.errors import RichcError\n")


def test_importing_the_package_loads_no_richc_module() -> None:
    modules = ["lxcfs_integration", "lxcfs_integration.remount", "lxcfs_integration.syscalls"]
    assert loaded_after_import(modules, ("richc", "yaml")) == []
