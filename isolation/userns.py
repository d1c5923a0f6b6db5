"""A user namespace with a given id mapping, held by a file descriptor.

An idmapped mount needs a user namespace fd whose mapping it copies. The kernel only makes
a user namespace for a process, so a forked child unshares one and waits; the parent writes
the child's uid_map and gid_map (root in the parent namespace may write any mapping),
opens /proc/CHILD/ns/user, and then lets the child exit and reaps it by its pid. The fd
keeps the namespace alive after the child is gone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from isolation._libc import libc
from isolation.errors import IsolationError
from isolation.idmap import IdMap

# <linux/sched.h>
CLONE_NEWUSER = 0x10000000


def open_userns(idmap: IdMap) -> int:
    """A new user namespace with *idmap*, as an O_CLOEXEC fd the caller closes."""
    unshare = libc().unshare  # looked up before the fork: the child must not dlopen
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: a few system calls, nothing that locks
        try:
            os.close(ready_r)
            os.close(hold_w)
            err = 0 if unshare(CLONE_NEWUSER) == 0 else ctypes.get_errno()
            os.write(ready_w, err.to_bytes(4, "little"))
            os.read(hold_r, 1)  # until the parent closes its end
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    try:
        reply = os.read(ready_r, 4)
        if len(reply) != 4:
            raise IsolationError(errno.ECHILD, "the user namespace helper died before unsharing")
        err = int.from_bytes(reply, "little")
        if err:
            raise IsolationError(
                err,
                f"cannot make a user namespace: unshare(CLONE_NEWUSER): {os.strerror(err)}",
                hint="check `sysctl user.max_user_namespaces` (0 disables them) and, on "
                "Debian kernels before 6.x, kernel.unprivileged_userns_clone",
            )
        # gid_map first or last makes no difference for a writer with CAP_SETGID in the
        # parent namespace; setgroups stays "allow" so the namespace can be used by a root.
        for name, text in (("uid_map", idmap.uid_map()), ("gid_map", idmap.gid_map())):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        _kill(pid)
        raise
    finally:
        os.close(ready_r)
        os.close(hold_w)  # the child's read returns and it exits
        _reap(pid)


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except ChildProcessError:
            return
        except InterruptedError:
            continue


@contextmanager
def userns(idmap: IdMap) -> Iterator[int]:
    """``with userns(idmap) as fd``: a user namespace fd closed on every exit path."""
    fd = open_userns(idmap)
    try:
        yield fd
    finally:
        os.close(fd)
