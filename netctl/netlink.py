"""The door to pyroute2: imported lazily (about 140 ms) so that importing netctl, and every
richc command that does not touch the network, stays fast; netlink failures become
LinkError with what was being done."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from netctl.errors import LinkError, ToolMissing


def _pyroute2() -> Any:
    try:
        import pyroute2
    except ImportError:
        raise ToolMissing(
            "pyroute2 is not installed: netctl needs it to talk netlink",
            hint="pip install pyroute2",
        ) from None
    return pyroute2


def available() -> bool:
    """Whether pyroute2 can be imported."""
    try:
        _pyroute2()
    except ToolMissing:
        return False
    return True


@contextmanager
def iproute(pid: int | None = None) -> Iterator[Any]:
    """An IPRoute on the host's network namespace, or on that of process *pid*."""
    pyroute2 = _pyroute2()
    if pid is None:
        ipr = pyroute2.IPRoute()
    else:
        path = f"/proc/{pid}/ns/net"
        if not os.path.exists(path):
            raise LinkError(f"process {pid} does not exist, so it has no network namespace")
        # flags=0: open the namespace as it is; pyroute2's default O_CREAT would try to
        # create a named namespace by that path.
        ipr = pyroute2.IPRoute(netns=path, flags=0)
    try:
        yield ipr
    finally:
        ipr.close()


def netlink_errno(err: BaseException) -> int | None:
    """The errno of a pyroute2 NetlinkError (or OSError), None for anything else."""
    code = getattr(err, "code", None)
    if isinstance(code, int):
        return code
    return err.errno if isinstance(err, OSError) else None


@contextmanager
def doing(what: str, *, tolerate: tuple[int, ...] = ()) -> Iterator[None]:
    """Turn a netlink failure inside the block into LinkError("cannot WHAT: strerror");
    errnos in *tolerate* are swallowed (e.g. EEXIST when making something idempotent)."""
    try:
        yield
    except LinkError:
        raise
    except Exception as err:
        code = netlink_errno(err)
        if code is None:
            raise
        if code in tolerate:
            return
        hint = "netctl must run as root (CAP_NET_ADMIN)" if code == errno.EPERM else None
        raise LinkError(f"cannot {what}: {os.strerror(code)}", hint=hint) from err


def lookup(ipr: Any, ifname: str) -> int | None:
    """The index of link *ifname*, or None."""
    found = ipr.link_lookup(ifname=ifname)
    return int(found[0]) if found else None
