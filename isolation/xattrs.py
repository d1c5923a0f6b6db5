"""The two extended attributes that hold user and group ids, and how to shift them.

- POSIX ACLs (``system.posix_acl_access`` and ``system.posix_acl_default``): a 4-byte
  version header, then 8-byte entries ``{u16 tag, u16 perm, u32 id}``; only named-user
  and named-group entries carry an id (<linux/posix_acl_xattr.h>).
- File capabilities (``security.capability``): version 2 (20 bytes, valid for the initial
  user namespace only) or version 3 (24 bytes, with the host uid that is root of the user
  namespace the capabilities apply in) (<linux/capability.h>). A container's root is
  ``host_start``, so a shifted file carries v3 with that rootid; a v2 capability would be
  ignored inside the user namespace and ``ping`` or ``newuidmap`` would lose their powers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

# <linux/posix_acl_xattr.h>, <linux/posix_acl.h>
ACL_ACCESS = "system.posix_acl_access"
ACL_DEFAULT = "system.posix_acl_default"
POSIX_ACL_XATTR_VERSION = 0x0002
ACL_USER = 0x02
ACL_GROUP = 0x08

# <linux/capability.h>
CAPABILITY = "security.capability"
VFS_CAP_REVISION_MASK = 0xFF000000
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_REVISION_3 = 0x03000000
XATTR_CAPS_SZ_2 = 20
XATTR_CAPS_SZ_3 = 24

IdShift = Callable[[int], int]


class XattrFormatError(ValueError):
    """An ACL or capability value this module does not understand: left as it is."""


def shift_acl(value: bytes, uid: IdShift, gid: IdShift) -> bytes:
    """An ACL xattr with its named-user ids passed through *uid* and named-group ids
    through *gid*."""
    if len(value) < 4 or (len(value) - 4) % 8:
        raise XattrFormatError(f"ACL of {len(value)} bytes is not 4 + 8n")
    (version,) = struct.unpack_from("<I", value)
    if version != POSIX_ACL_XATTR_VERSION:
        raise XattrFormatError(f"ACL version {version}")
    out = bytearray(value)
    for offset in range(4, len(value), 8):
        tag, perm, ident = struct.unpack_from("<HHI", value, offset)
        if tag == ACL_USER:
            ident = uid(ident)
        elif tag == ACL_GROUP:
            ident = gid(ident)
        struct.pack_into("<HHI", out, offset, tag, perm, ident)
    return bytes(out)


def acl_ids(value: bytes) -> list[tuple[int, int]]:
    """``(tag, id)`` of the named entries of an ACL xattr, for tests and diagnostics."""
    shift_acl(value, lambda i: i, lambda i: i)  # validates
    found = []
    for offset in range(4, len(value), 8):
        tag, _, ident = struct.unpack_from("<HHI", value, offset)
        if tag in (ACL_USER, ACL_GROUP):
            found.append((tag, ident))
    return found


def make_acl(entries: list[tuple[int, int, int]]) -> bytes:
    """An ACL xattr from ``(tag, perm, id)`` entries (id 0xFFFFFFFF where none applies)."""
    return struct.pack("<I", POSIX_ACL_XATTR_VERSION) + b"".join(
        struct.pack("<HHI", tag, perm, ident) for tag, perm, ident in entries
    )


def capability_rootid(value: bytes) -> int:
    """The host uid the capability applies as root of: 0 for version 2."""
    if len(value) < 4:
        raise XattrFormatError(f"capability of {len(value)} bytes")
    (magic,) = struct.unpack_from("<I", value)
    revision = magic & VFS_CAP_REVISION_MASK
    if revision == VFS_CAP_REVISION_2 and len(value) == XATTR_CAPS_SZ_2:
        return 0
    if revision == VFS_CAP_REVISION_3 and len(value) == XATTR_CAPS_SZ_3:
        return int(struct.unpack_from("<I", value, 20)[0])
    raise XattrFormatError(f"capability revision {revision >> 24} of {len(value)} bytes")


def with_rootid(value: bytes, rootid: int) -> bytes:
    """The capability *value* applying as root of *rootid*: version 3 for a namespaced
    root, version 2 for rootid 0 (what the kernel itself reports to the initial namespace,
    so an unshift gives back the bytes setcap wrote)."""
    capability_rootid(value)  # validates
    (magic,) = struct.unpack_from("<I", value)
    flags = magic & ~VFS_CAP_REVISION_MASK & 0xFFFFFFFF
    body = value[4:20]
    if rootid == 0:
        return struct.pack("<I", VFS_CAP_REVISION_2 | flags) + body
    return struct.pack("<I", VFS_CAP_REVISION_3 | flags) + body + struct.pack("<I", rootid)
