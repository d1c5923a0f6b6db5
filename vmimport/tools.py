"""The package's only child processes: qemu-img, losetup, blkid, the LVM tools, ssh and
rsync. Every one goes through :func:`run`, with a rebuilt environment and stdin closed."""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping

from vmimport.errors import ToolFailed

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)

log = logging.getLogger("vmimport")

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The type of every progress callback: bytes (or items) done, the total if known, and what
# is being done ("converting disk.qcow2", "copying root@host:/").
Progress = Callable[[int, int | None, str], None]


def _die_with_parent() -> None:
    # A tool must not outlive a SIGKILLed caller: a qemu-img convert left running would go
    # on filling the scratch directory after cleanup() removed its (then unlinked) file.
    # Runs in the child between fork and exec, so it only makes the one call (Python
    # warns that preexec_fn is unsafe with threads because of what else a child might do).
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def run(
    argv: list[str],
    *,
    ok: tuple[int, ...] = (0,),
    env: Mapping[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
) -> str:
    """Run *argv*; return its stdout or raise ToolFailed (127 when it is not installed).

    With *on_output*, stdout is read as it comes and every line is passed on, a line
    ending at ``\\r`` as well as at ``\\n``: qemu-img -p and rsync --info=progress2 redraw
    one line with carriage returns. stderr goes to a temporary file, not a pipe, so a
    chatty stderr can never block the child while we wait on stdout.
    """
    log.debug("+ %s", shlex.join(argv))
    environ = {"PATH": PATH, "LC_ALL": "C", **(env or {})}
    chunks: list[str] = []
    with tempfile.TemporaryFile() as errfile:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errfile,
                env=environ,
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError:
            raise ToolFailed(argv, 127, f"{argv[0]} is not installed") from None
        assert proc.stdout is not None
        with proc:
            pending = b""
            while block := os.read(proc.stdout.fileno(), 65536):
                text = block.decode(errors="replace")
                chunks.append(text)
                if on_output is None:
                    continue
                pending += block
                *lines, pending = pending.replace(b"\r", b"\n").split(b"\n")
                for line in lines:
                    if line.strip():
                        on_output(line.decode(errors="replace"))
            if on_output is not None and pending.strip():
                on_output(pending.decode(errors="replace"))
        errfile.seek(0)
        stderr = errfile.read().decode(errors="replace")
    if proc.returncode not in ok:
        raise ToolFailed(argv, proc.returncode, stderr or "".join(chunks))
    return "".join(chunks)


def find_tool(name: str) -> str | None:
    return shutil.which(name, path=PATH)


def have_tools(*names: str) -> list[str]:
    """The names among *names* that are not installed."""
    return [name for name in names if find_tool(name) is None]
