"""The container runtimes (LXC, runc) and how richc picks one; the protocol is in
richc.runtime.base."""

from __future__ import annotations

from typing import TYPE_CHECKING

# Re-exported: callers name them as richc.runtime.*.
from richc.runtime.base import ExecRequest as ExecRequest
from richc.runtime.base import Runtime as Runtime
from richc.runtime.base import RuntimeStatus as RuntimeStatus

if TYPE_CHECKING:
    from richc.state import State


def get_runtime(name: str) -> Runtime:
    """Return the runtime called *name* ("lxc" or "runc")."""
    if name == "lxc":
        from richc.runtime.lxc import LxcRuntime

        return LxcRuntime()
    if name == "runc":
        from richc.runtime.runc import RuncRuntime

        return RuncRuntime()
    from richc.errors import UsageError

    raise UsageError(f"unknown runtime {name!r}", hint="use lxc or runc")


def runtime_for(state: State) -> Runtime:
    """The runtime a container was created with (containers from before runc: lxc)."""
    return get_runtime(state.runtime or "lxc")
