"""The door to pyroute2: imported lazily (about 140 ms) so that importing netctl, and every
richc command that does not touch the network, stays fast; netlink failures become
LinkError with what was being done."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
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
    # In another namespace: a socket made there, handed to pyroute2 (which owns it then).
    ipr = pyroute2.IPRoute() if pid is None else pyroute2.IPRoute(fileno=_netlink_socket_in(pid))
    try:
        yield ipr
    finally:
        ipr.close()


CLONE_NEWNET = 0x40000000  # <sched.h>
NETLINK_ROUTE = 0  # <linux/netlink.h>


def _netlink_socket_in(pid: int) -> int:
    """A NETLINK_ROUTE socket (its fd) in the network namespace of process *pid*. A socket
    belongs to the namespace it was made in, so a short-lived thread enters the namespace
    (setns acts on the calling thread only), makes it and exits. pyroute2's own way, a
    forked child, costs 10-25 ms per namespace here; this costs well under 1 ms."""
    try:
        ns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LinkError(f"process {pid} does not exist, so it has no network namespace") from None
    result: dict[str, int | OSError] = {}

    def enter() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(ns_fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            result["error"] = OSError(
                err, f"setns into the namespace of process {pid}: {os.strerror(err)}"
            )
            return
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
        result["fd"] = sock.detach()

    try:
        thread = threading.Thread(target=enter, name=f"netns-{pid}")
        thread.start()
        thread.join()
    finally:
        os.close(ns_fd)
    error = result.get("error")
    if isinstance(error, OSError):
        raise LinkError(f"cannot enter the network namespace of process {pid}: {error.strerror}")
    fd = result["fd"]
    assert isinstance(fd, int)
    return fd


def shares_our_netns(pid: int) -> bool:
    """Whether process *pid* lives in the caller's own network namespace (for richc: the
    host's), where configuring "the container's" eth0 and default route would rewire the
    host itself."""
    try:
        theirs = os.stat(f"/proc/{pid}/ns/net")
    except FileNotFoundError:
        raise LinkError(f"process {pid} does not exist, so it has no network namespace") from None
    ours = os.stat("/proc/self/ns/net")
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


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
