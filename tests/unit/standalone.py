"""Checks that a package of this repository stands alone: it imports the standard library
and itself only, both in its source (every import statement, top level or inside
functions) and on a fresh interpreter, so a lazy ``from richc ...`` is caught too."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def foreign_imports(package: str) -> dict[str, list[str]]:
    """Per module of *package*, the roots it imports from outside the stdlib and itself."""
    modules = sorted((REPO / package).glob("*.py"))
    assert len(modules) >= 5, f"{package}: too few modules found; wrong path?"
    found: dict[str, list[str]] = {}
    for module in modules:
        foreign = {
            root
            for root in imported_roots(module.read_text())
            if root != package and root not in sys.stdlib_module_names
        }
        if foreign:
            found[module.name] = sorted(foreign)
    return found


def loaded_after_import(modules: list[str], roots: tuple[str, ...]) -> list[str]:
    """The modules under *roots* a fresh interpreter has loaded after importing *modules*."""
    code = (
        f"import json, sys, {', '.join(modules)}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {roots!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded
