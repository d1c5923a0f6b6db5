"""The live half of the probe: can this Python load the lxc bindings, which binaries exist.

These checks look at the running process and richc's PATH, not at the probed root, so
they are kept apart and every entry point is injectable: a test passes an ``import_module``
that fails, or a ``which`` that finds no runc.
"""

from __future__ import annotations

import ctypes
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from richc.errors import CommandFailed
from richc.run import run, which

# The soname the lxc bindings link against (Debian's liblxc1 package).
LIBLXC = "liblxc.so.1"


@dataclass(frozen=True)
class LxcBindings:
    loaded: bool  # `import lxc` worked
    version: str | None  # liblxc's version as the bindings report it
    error: str | None  # why the import failed
    liblxc: bool  # liblxc.so.1 itself loads (tells a missing library from missing bindings)


@dataclass(frozen=True)
class Tool:
    name: str
    path: str | None
    version: str | None  # first line of `NAME --version`

    @property
    def present(self) -> bool:
        return self.path is not None


@dataclass(frozen=True)
class RuntimeTools:
    lxc: LxcBindings
    runc: Tool
    crun: Tool
    lxcfs: Tool


def tool_version(path: Path) -> str | None:
    try:
        proc = run([path, "--version"], check=False, timeout=10)
    except CommandFailed:
        return None
    # lxcfs prints its version, quoted, on stderr; runc and crun use stdout.
    lines = ((proc.stdout or "").strip() or (proc.stderr or "").strip()).splitlines()
    return lines[0].strip().strip('"') if proc.returncode == 0 and lines else None


def _load_liblxc(soname: str) -> object:
    return ctypes.CDLL(soname)


def probe_lxc(
    import_module: Callable[[str], ModuleType] = importlib.import_module,
    load_library: Callable[[str], object] = _load_liblxc,
) -> LxcBindings:
    try:
        load_library(LIBLXC)
        liblxc = True
    except OSError:
        liblxc = False
    try:
        module = import_module("lxc")
    except Exception as exc:  # a broken binding raises anything from ImportError to OSError
        return LxcBindings(False, None, f"{type(exc).__name__}: {exc}", liblxc)
    version = getattr(module, "version", None)
    return LxcBindings(True, str(version) if version is not None else None, None, liblxc)


def probe_tool(
    name: str,
    which: Callable[[str], Path | None] = which,
    version: Callable[[Path], str | None] = tool_version,
) -> Tool:
    path = which(name)
    if path is None:
        return Tool(name, None, None)
    return Tool(name, str(path), version(path))


def probe_tools(
    *,
    import_module: Callable[[str], ModuleType] = importlib.import_module,
    load_library: Callable[[str], object] = _load_liblxc,
    which: Callable[[str], Path | None] = which,
    version: Callable[[Path], str | None] = tool_version,
) -> RuntimeTools:
    return RuntimeTools(
        lxc=probe_lxc(import_module, load_library),
        runc=probe_tool("runc", which, version),
        crun=probe_tool("crun", which, version),
        lxcfs=probe_tool("lxcfs", which, version),
    )
