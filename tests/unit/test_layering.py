"""richc's layers, checked: no import circle and no import from a higher layer, counting
every import statement (at module level, inside functions, under TYPE_CHECKING).

A function-local import hides a circle from Python's import machinery, not from a reader:
``a`` needing ``b`` and ``b`` needing ``a`` is one module in two files. The layers, lowest
first, are those README's "How it is built" draws; a module may import its own layer and
those below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "richc"

# Lowest first. A name covers the module and, for a package, everything in it.
LAYERS: tuple[tuple[str, ...], ...] = (
    # utilities that know nothing of containers
    ("richc", "richc.errors", "richc.paths", "richc.sizes", "richc.procs", "richc.pidwait",
     "richc.mountinfo", "richc.lock", "richc.log", "richc.journal", "richc.run",
     "richc.datafiles", "richc.templating", "richc.sdnotify"),
    # the model: a container's config and what richc records about it
    ("richc.config", "richc.state"),
    # storage, the pure spec, the host probe and cgroup files
    ("richc.store", "richc.context", "richc.spec", "richc.cgroups", "richc.probe"),
    # facts of this host, the rootfs, the runtimes, managed networks
    ("richc.hostfacts", "richc.rootfs", "richc.runtime", "richc.livewrites", "richc.netusers",
     "richc.networks", "richc.netleases"),
    # hooks
    ("richc.hookrun",),
    # host resources (the protocol the lifecycle loops over) and systemd units
    ("richc.hostres", "richc.systemd_unit"),
    # operations
    ("richc.lifecycle", "richc.reconfigure", "richc.info", "richc.stats", "richc.execute",
     "richc.migrate",
     "richc.supervise", "richc.plan", "richc.lxcfs_ops"),
    # the command line
    ("richc.cli", "richc.entry"),
)  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The richc module an import of *name* loads (a name inside a module: the module)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """The richc modules *module* imports, wherever the import statement is."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from richc import config` uses the module richc.config; `from richc.spec
            # import Mount` uses richc.spec (resolve walks up from richc.spec.Mount).
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            target = resolve(name) if name.split(".")[0] == "richc" else None
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (length of the matching name, layer)
    for index, names in enumerate(LAYERS):
        for name in names:
            matches = module == name or module.startswith(name + ".")
            if matches and name != "richc" and (best is None or len(name) > best[0]):
                best = (len(name), index)
    if best is None:
        assert module == "richc", f"{module} is in no layer: add it to LAYERS"
        return 0
    return best[1]


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module: str) -> None:
    mine = layer_of(module)
    upward = sorted(t for t in GRAPH[module] if layer_of(t) > mine)
    assert not upward, f"{module} (layer {mine}) imports from higher layers: {upward}"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module: each is an import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    assert strongly_connected(GRAPH) == []


def test_the_checks_see_a_circle_and_a_function_local_import() -> None:
    # The checker itself: a circle through a lazy import is found.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    source = "def f():\n    from richc.lifecycle import make_spec\n"
    tree = ast.parse(source)
    assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))
