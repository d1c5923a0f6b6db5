"""richc's own log records: to journald with structured fields, or to stderr and log files.

Every record carries up to four fields, taken from the context an operation binds:
``RICHC_CONTAINER``, ``RICHC_OPERATION``, ``RICHC_HOOK`` and ``RICHC_STAGE``. With journald
(its socket exists), records go there through ``systemd-python`` with those fields, so
``journalctl RICHC_CONTAINER=web01`` finds everything richc did to web01. Without it (or
without systemd-python, which earns one warning), they go to stderr, and records about a
container are also appended to its ``richc.log`` in the container's log directory
(``/var/log/richc/NAME/``).

The binding is a :mod:`contextvars` context: ``bind()`` sets fields for the rest of the
operation (one CLI command is one operation), ``fields()`` sets them for a block.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from richc import journal as journald

# The fields, their journald names, and the record attribute each is copied into.
FIELDS = ("container", "operation", "hook", "stage")
JOURNAL_FIELD = {name: f"RICHC_{name.upper()}" for name in FIELDS}
SYSLOG_IDENTIFIER = "richc"

_context: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "richc_log_fields", default=None
)


def current_fields() -> dict[str, str]:
    return dict(_context.get() or {})


def bind(**values: str | None) -> None:
    """Set fields for the rest of the current operation (``None`` clears one)."""
    _context.set(_merged(values))


@contextlib.contextmanager
def fields(**values: str | None) -> Iterator[None]:
    """Set fields for the block only: ``with fields(stage="poststart", hook="register"):``."""
    token = _context.set(_merged(values))
    try:
        yield
    finally:
        _context.reset(token)


def _merged(values: Mapping[str, str | None]) -> dict[str, str]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown log fields: {', '.join(sorted(unknown))}")
    merged = current_fields()
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class ContextFilter(logging.Filter):
    """Copy the bound fields into each record (``record.richc_fields``) as it is made.

    A record's own ``extra={"richc_fields": {...}}`` wins over the context, field by field.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        own = getattr(record, "richc_fields", None) or {}
        record.richc_fields = {**current_fields(), **own}
        return True


def record_fields(record: logging.LogRecord) -> dict[str, str]:
    value = getattr(record, "richc_fields", None)
    return dict(value) if isinstance(value, Mapping) else {}


# syslog priorities (sd-journal's PRIORITY field), by logging level.
def _priority(levelno: int) -> int:
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def journal_fields(record: logging.LogRecord) -> dict[str, str | int]:
    """The structured fields a record is sent to journald with (besides MESSAGE)."""
    out: dict[str, str | int] = {
        "PRIORITY": str(_priority(record.levelno)),
        "SYSLOG_IDENTIFIER": SYSLOG_IDENTIFIER,
        "LOGGER": record.name,
        "CODE_FILE": record.pathname,
        "CODE_LINE": record.lineno,  # systemd.journal.send formats it with {:d}
        "CODE_FUNC": record.funcName,
    }
    for key, value in record_fields(record).items():
        out[JOURNAL_FIELD[key]] = value
    return out


class JournalHandler(logging.Handler):
    """Send records to journald with richc's structured fields."""

    def __init__(self, send: journald.Sender | None = None) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._send is None:
                self._send = journald.sender()
            self._send(self.format(record), **journal_fields(record))
        except Exception:
            self.handleError(record)


class ContainerFileHandler(logging.Handler):
    """Append records about a container to ``LOGS/NAME/richc.log``.

    The file is opened per record: richc commands are short and log little, and a
    long-lived supervisor must not hold a file that ``richc rm`` deletes.
    """

    def __init__(self, logs_dir: Path) -> None:
        super().__init__()
        self.logs_dir = logs_dir

    def emit(self, record: logging.LogRecord) -> None:
        values = record_fields(record)
        container = values.get("container")
        if not container:
            return
        try:
            directory = self.logs_dir / container
            if not directory.is_dir():  # the container is gone (or not made yet)
                return
            with open(directory / "richc.log", "a") as handle:
                handle.write(format_file_line(record, values) + "\n")
        except Exception:
            self.handleError(record)


def format_file_line(record: logging.LogRecord, values: Mapping[str, str]) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    tags = " ".join(
        f"{JOURNAL_FIELD[k]}={values[k]}" for k in FIELDS if k != "container" and k in values
    )
    message = record.getMessage()
    if record.exc_info:
        message += "\n" + logging.Formatter().formatException(record.exc_info)
    return f"{stamp}Z {record.levelname} [{os.getpid()}] {tags + ' ' if tags else ''}{message}"


def setup(*, debug: bool, logs_dir: Path | None, journal: bool | None = None) -> None:
    """Configure logging for one richc process: journald or stderr + log files.

    ``journal=None`` detects journald; tests pass True or False. Where journald runs but
    systemd-python is missing, records go to stderr and the log files, after one warning.
    """
    use_journal = journald.available() if journal is None else journal
    missing_module = use_journal and not journald.module_available()
    if missing_module:
        # Else each record would print a "--- Logging error ---" traceback.
        use_journal = False
    # The root logger, as logging.basicConfig would: the stdlib-only packages (quota,
    # lxcfs_integration) log under their own names and must land in the same places.
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    context_filter = ContextFilter()

    handlers: list[logging.Handler] = []
    if use_journal:
        handlers.append(JournalHandler())
    if not (use_journal and journald.stderr_is_journal()):
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(
            logging.Formatter("%(levelname)s: %(message)s" if debug else "%(message)s")
        )
        handlers.append(console)
    if not use_journal and logs_dir is not None:
        handlers.append(ContainerFileHandler(logs_dir))
    for handler in handlers:
        handler.addFilter(context_filter)
        root.addHandler(handler)
    if missing_module:
        logging.getLogger("richc").warning(
            "journald runs but systemd-python is missing: richc's records go to stderr and"
            " the container's richc.log (pip install systemd-python)"
        )
