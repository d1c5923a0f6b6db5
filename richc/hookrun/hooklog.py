"""The hook log: every hook's output and outcome, tagged with container, stage and hook.

Records go to the container's ``hooks.log`` (in its log directory) and, where journald
listens, to the journal with the fields ``RICHC_CONTAINER``, ``RICHC_STAGE``, ``RICHC_HOOK``
and ``RICHC_OPERATION`` (the richc command that ran the hooks, where one is bound in
:mod:`richc.log`; LXC's poststop callback has none), so ``journalctl RICHC_CONTAINER=web01
RICHC_STAGE=poststop`` finds them. The logger is
``richc.hooks`` and does not propagate: hook output is data about the container, not
richc's own chatter on stderr. richc's own warnings about failed hooks go to ``richc``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from richc import journal as journald
from richc import log as richc_log

# In hooks.log's order; the operation comes last so older lines and new ones read alike.
FIELDS = ("RICHC_CONTAINER", "RICHC_STAGE", "RICHC_HOOK", "RICHC_OPERATION")

logger = logging.getLogger("richc.hooks")
logger.propagate = False
logger.setLevel(logging.DEBUG)


def tags(container: str, stage: str, hook: str | None = None) -> dict[str, Any]:
    """The ``extra=`` of a hook record. ``richc_fields`` is what richc.log's handlers read."""
    extra: dict[str, Any] = {"RICHC_CONTAINER": container, "RICHC_STAGE": stage}
    fields = {"container": container, "stage": stage}
    if hook is not None:
        extra["RICHC_HOOK"] = hook
        fields["hook"] = hook
    operation = richc_log.current_fields().get("operation")
    if operation:
        extra["RICHC_OPERATION"] = operation
        fields["operation"] = operation
    extra["richc_fields"] = fields
    return extra


def format_line(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    millis = int(record.msecs)
    parts = [f"{stamp}.{millis:03d}Z", record.levelname.lower()]
    for field in FIELDS:
        value = getattr(record, field, None)
        if value is not None:
            parts.append(f"{field.removeprefix('RICHC_').lower()}={value}")
    return " ".join(parts) + ": " + record.getMessage()


class HookFileHandler(logging.Handler):
    """Append to one container's hooks.log; opened per record, as richc commands are short."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as handle:
                handle.write(format_line(record) + "\n")
        except Exception:
            self.handleError(record)


class HookJournalHandler(logging.Handler):
    """Send records to journald with the hook fields; systemd-python is imported on first use."""

    def __init__(self, send: journald.Sender | None = None) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._send is None:
                self._send = journald.sender()
            fields = {f: str(getattr(record, f)) for f in FIELDS if hasattr(record, f)}
            priority = 4 if record.levelno >= logging.WARNING else 6
            self._send(
                record.getMessage(),
                PRIORITY=str(priority),
                SYSLOG_IDENTIFIER="richc-hook",
                **fields,
            )
        except Exception:
            self.handleError(record)


_journal: HookJournalHandler | None = None


@contextlib.contextmanager
def to_container_log(log_file: Path, *, journal: bool | None = None) -> Iterator[None]:
    """Route ``richc.hooks`` records to *log_file* (and journald) for the block."""
    global _journal
    handler = HookFileHandler(log_file)
    logger.addHandler(handler)
    use_journal = journald.available() if journal is None else journal
    if use_journal and _journal is None:
        _journal = HookJournalHandler()
        logger.addHandler(_journal)
    try:
        yield
    finally:
        logger.removeHandler(handler)
