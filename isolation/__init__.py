"""Host-side pieces of richc's secure defaults (issue 17). Standalone: imports nothing
from richc.

- :mod:`isolation.idmap`: a 65536-id range per container, kept in /etc/subuid and
  /etc/subgid for the user ``richc``; ``lxc.idmap`` and OCI ``uidMappings`` renderings.
- :mod:`isolation.userns`: a user namespace fd with a given mapping.
- :mod:`isolation.idmount`: idmapped mounts (open_tree, mount_setattr, move_mount), the
  probe of a filesystem's support, and the findings on this host's kernel and runtimes.
- :mod:`isolation.overlay`: the overlay-shared image for unprivileged containers, and
  which ownership method (idmap or shift) a rootfs gets.
- :mod:`isolation.shift`: the fallback, a resumable one-time ownership shift and back.
- :mod:`isolation.xattrs`: the ids inside POSIX ACLs and file capabilities.
- :mod:`isolation.seccomp`: the default deny list, LXC text and OCI JSON renderings,
  custom profiles.
- :mod:`isolation.masked`: masked and read-only /proc and /sys paths for both runtimes.
- :mod:`isolation.apparmor`: detection, richc's profile text, loading.
- :mod:`isolation.probes`: the static escape probe (C source in ``probe/``).
- :mod:`isolation.policy`: one container's choices rendered for LXC or merged into a
  config.json in one call (what richc's renderers use).
- :mod:`isolation.hostcheck`: what the host offers, for ``richc doctor``.
"""

from isolation.errors import (
    IdmapUnsupported,
    IdRangeExhausted,
    InvalidProfile,
    IsolationError,
    KernelTooOld,
    ShiftConflict,
    SubIdFileInvalid,
    ToolFailed,
)
from isolation.idmap import IdMap, IdRange

__all__ = [
    "IdMap",
    "IdRange",
    "IdRangeExhausted",
    "IdmapUnsupported",
    "InvalidProfile",
    "IsolationError",
    "KernelTooOld",
    "ShiftConflict",
    "SubIdFileInvalid",
    "ToolFailed",
]
