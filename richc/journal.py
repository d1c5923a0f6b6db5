"""journald: where it listens, systemd-python's send, and whether stderr already goes there.
The one home of richc's journald plumbing; richc.log and the hooks' log use it."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SOCKET = Path("/run/systemd/journal/socket")

Sender = Callable[..., Any]


def available() -> bool:
    """True where a journald listens; the host's, whatever richc's --root says."""
    return SOCKET.exists()


def module_available() -> bool:
    """True if ``systemd.journal`` (systemd-python) can be found.

    It finds the module without running it, so the ~15 ms import still waits for the first
    record; a missing module is known before any record is sent.
    """
    try:
        return importlib.util.find_spec("systemd.journal") is not None
    except (ImportError, ValueError):  # no `systemd` package, or a None in sys.modules
        return False


def stderr_is_journal() -> bool:
    """True when stderr already goes to the journal (a systemd service's default).

    systemd sets ``$JOURNAL_STREAM`` to the ``DEVICE:INODE`` of the stream it connected;
    if stderr is that stream, writing records there too would log each one twice.
    """
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return bool(inode) and f"{st.st_dev}:{st.st_ino}" == f"{device}:{inode}"


def sender() -> Sender:
    """journald's send, or a no-op (said once) where systemd-python is not installed.

    systemd-python costs ~15 ms to import: callers pay it on their first record, not on
    every command.
    """
    try:
        from systemd import journal
    except ImportError:
        logging.getLogger("richc").warning(
            "journald runs but systemd-python is missing: records go to the log files only"
            " (pip install systemd-python)"
        )
        return lambda *args, **kwargs: None
    send: Sender = journal.send
    return send
