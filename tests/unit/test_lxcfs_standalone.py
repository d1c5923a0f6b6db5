"""lxcfs_integration is a standalone package: it imports the standard library and itself only.

Checked on the source (every import statement, top level or inside functions) and on a
fresh interpreter, so a lazy ``from richc ...`` inside a function is caught too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lxcfs_integration"


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_module_imports_only_the_stdlib_and_itself() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 5
    for module in modules:
        foreign = {
            root
            for root in imported_roots(module.read_text())
            if root != "lxcfs_integration" and root not in sys.stdlib_module_names
        }
        assert not foreign, f"{module.name} imports {sorted(foreign)}"


def test_the_checker_sees_a_lazy_import() -> None:
    assert "richc" in imported_roots("def f():\n    from richc.errors import RichcError\n")


def test_importing_the_package_loads_no_richc_module() -> None:
    code = (
        "import sys, lxcfs_integration, lxcfs_integration.remount, lxcfs_integration.syscalls\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('richc', 'yaml')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
