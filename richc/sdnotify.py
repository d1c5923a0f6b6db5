"""sd_notify(3) without libsystemd: one datagram to ``$NOTIFY_SOCKET``.

A ``Type=notify`` unit is "started" when its main process sends ``READY=1``. The protocol is
a single ``AF_UNIX``/``SOCK_DGRAM`` message of newline-separated ``KEY=VALUE`` lines; a
socket path starting with ``@`` names an abstract socket.
"""

from __future__ import annotations

import os
import socket


def notify_socket() -> str | None:
    """The service manager's socket, or None when no manager waits for notifications."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    return path if path.startswith(("/", "@")) else None


def notify(**values: str | int) -> bool:
    """Send ``KEY=VALUE`` lines (``notify(READY=1, STATUS="running")``); False without a manager.

    A manager that is there but refuses the message is an OSError: systemd would then kill
    a ``Type=notify`` service that never reports ready, so the caller should know.
    """
    path = notify_socket()
    if path is None:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    message = "\n".join(f"{key}={value}" for key, value in values.items()).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message)
    return True
