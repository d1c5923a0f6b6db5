"""ACL and file-capability values: parsing and shifting (pure)."""

from __future__ import annotations

import struct

import pytest

from isolation.xattrs import (
    ACL_GROUP,
    ACL_USER,
    XattrFormatError,
    acl_ids,
    capability_rootid,
    make_acl,
    shift_acl,
    with_rootid,
)

UNDEF = 0xFFFFFFFF
# user::rw- user:1000:r-- group::r-- group:50:rw- mask::rw- other::---
ACL = make_acl(
    [(0x01, 6, UNDEF), (ACL_USER, 4, 1000), (0x04, 4, UNDEF), (ACL_GROUP, 6, 50),
     (0x10, 6, UNDEF), (0x20, 0, UNDEF)]
)  # fmt: skip


def test_shift_acl_moves_named_entries_only() -> None:
    shifted = shift_acl(ACL, lambda u: u + 100000, lambda g: g + 200000)
    assert acl_ids(shifted) == [(ACL_USER, 101000), (ACL_GROUP, 200050)]
    assert len(shifted) == len(ACL)
    # the unnamed entries keep their undefined id
    assert shifted[4:12] == ACL[4:12]
    assert shift_acl(shifted, lambda u: u - 100000, lambda g: g - 200000) == ACL


@pytest.mark.parametrize("bad", [b"", b"\x02\x00\x00\x00\x01", b"\x01\x00\x00\x00"])
def test_shift_acl_refuses_what_it_does_not_know(bad: bytes) -> None:
    with pytest.raises(XattrFormatError):
        shift_acl(bad, lambda u: u, lambda g: g)


# cap_net_raw=ep as setcap writes it: v2, effective flag, permitted bit 13.
CAP_V2 = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


def test_capability_v2_becomes_v3_with_the_namespace_root_and_back() -> None:
    assert capability_rootid(CAP_V2) == 0
    v3 = with_rootid(CAP_V2, 100000)
    assert len(v3) == 24
    assert struct.unpack("<I", v3[:4])[0] == 0x03000001  # effective flag kept
    assert capability_rootid(v3) == 100000
    assert v3[4:20] == CAP_V2[4:20]
    assert with_rootid(v3, 0) == CAP_V2


def test_capability_of_an_unknown_revision_is_refused() -> None:
    with pytest.raises(XattrFormatError):
        capability_rootid(struct.pack("<IIIII", 0x01000000, 0, 0, 0, 0))
    with pytest.raises(XattrFormatError):
        capability_rootid(CAP_V2 + b"\0")  # v2 magic, v3 length
