"""lxcfs for rich containers: find, start and health-check lxcfs, list its views, and
re-attach them inside running containers after lxcfs was restarted.

Standalone: imports only the standard library (richc wraps its errors). Modules:

- :mod:`~lxcfs_integration.views`: the bind mounts as plain data, rendered for LXC and OCI;
- :mod:`~lxcfs_integration.health`: is a home serving, are a container's views readable;
- :mod:`~lxcfs_integration.daemon`: start, stop and recover the lxcfs process;
- :mod:`~lxcfs_integration.remount`: replace dead views inside a container's namespace;
- :mod:`~lxcfs_integration.syscalls`: the raw mount syscalls, through ctypes.
"""

from typing import TYPE_CHECKING, Any

from lxcfs_integration.daemon import LxcfsProcess, Manager, current, ensure, start, stop
from lxcfs_integration.errors import LxcfsError, LxcfsNotInstalled, LxcfsStartError
from lxcfs_integration.health import (
    ContainerHealth,
    HomeState,
    HomeStatus,
    ViewHealth,
    container_health,
    home_status,
)
from lxcfs_integration.views import (
    DEFAULT_HOME,
    View,
    ViewKind,
    compute_views,
    render_lxc_config,
    render_lxc_entries,
    render_oci_mounts,
)

if TYPE_CHECKING:
    from lxcfs_integration.remount import (
        Method,
        Outcome,
        RemountReport,
        ViewResult,
        remount_views,
    )

# remount (select, signal, json, its result types) is imported on first use: starting a
# container needs the daemon and the views, and pays ~3 ms for each module it loads.
_REMOUNT_NAMES = frozenset({"Method", "Outcome", "RemountReport", "ViewResult", "remount_views"})


def __getattr__(name: str) -> Any:
    if name in _REMOUNT_NAMES:
        from lxcfs_integration import remount

        return getattr(remount, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_HOME",
    "ContainerHealth",
    "HomeState",
    "HomeStatus",
    "LxcfsError",
    "LxcfsNotInstalled",
    "LxcfsProcess",
    "LxcfsStartError",
    "Manager",
    "Method",
    "Outcome",
    "RemountReport",
    "View",
    "ViewHealth",
    "ViewKind",
    "ViewResult",
    "compute_views",
    "container_health",
    "current",
    "ensure",
    "home_status",
    "remount_views",
    "render_lxc_config",
    "render_lxc_entries",
    "render_oci_mounts",
    "start",
    "stop",
]
