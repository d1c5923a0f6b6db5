"""richc's logging: structured RICHC_* fields to journald, or stderr + the container's log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from richc import journal as journald
from richc import log


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_fields_nest_and_restore() -> None:
    log.bind(container="web01", operation="start")
    with log.fields(stage="poststart", hook="register"):
        assert log.current_fields() == {
            "container": "web01",
            "operation": "start",
            "stage": "poststart",
            "hook": "register",
        }
        with log.fields(hook=None):
            assert "hook" not in log.current_fields()
    assert log.current_fields() == {"container": "web01", "operation": "start"}
    with pytest.raises(TypeError):
        log.bind(colour="red")
    log.bind(container=None, operation=None)


def test_journal_records_carry_the_structured_fields() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    log.setup(debug=False, logs_dir=None, journal=True)
    root = logging.getLogger()
    journal = next(h for h in root.handlers if isinstance(h, log.JournalHandler))
    journal._send = lambda message, **fields: sent.append((message, fields))
    with log.fields(container="web01", operation="stop", stage="prestop", hook="drain"):
        logging.getLogger("richc.test").warning("hook %s took %d s", "drain", 3)
    logging.getLogger("richc").info("no container here")
    (message, fields), (_, plain) = sent
    assert message == "hook drain took 3 s"
    assert fields["RICHC_CONTAINER"] == "web01"
    assert fields["RICHC_OPERATION"] == "stop"
    assert fields["RICHC_STAGE"] == "prestop"
    assert fields["RICHC_HOOK"] == "drain"
    assert fields["PRIORITY"] == "4" and fields["SYSLOG_IDENTIFIER"] == "richc"
    assert "RICHC_CONTAINER" not in plain


def test_a_records_own_fields_win(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    log.setup(debug=True, logs_dir=None, journal=True)
    journal = next(h for h in logging.getLogger().handlers if isinstance(h, log.JournalHandler))
    journal._send = lambda message, **fields: sent.append(fields)
    with log.fields(container="web01", operation="start"):
        logging.getLogger("richc").debug(
            "x", extra={"richc_fields": {"hook": "register", "stage": "poststart"}}
        )
    assert sent[0]["RICHC_HOOK"] == "register" and sent[0]["RICHC_CONTAINER"] == "web01"
    assert sent[0]["PRIORITY"] == "7"


def test_without_journald_records_go_to_stderr_and_the_containers_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "var/log/richc"
    (logs / "web01").mkdir(parents=True)
    log.setup(debug=False, logs_dir=logs, journal=False)
    assert not any(isinstance(h, log.JournalHandler) for h in logging.getLogger().handlers)
    with log.fields(container="web01", operation="supervise"):
        logging.getLogger("richc.supervise").warning("init died")
    with log.fields(container="gone", operation="rm"):
        logging.getLogger("richc").info("no directory, no file")  # and no error either
    logging.getLogger("richc").info("host-wide")
    err = capsys.readouterr().err
    assert "init died" in err and "host-wide" in err
    text = (logs / "web01/richc.log").read_text()
    assert "WARNING" in text and "RICHC_OPERATION=supervise init died" in text
    assert "host-wide" not in text
    assert not (logs / "gone").exists()


def test_stderr_is_journal_matches_journal_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import sys

    st = os.fstat(sys.stderr.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    assert journald.stderr_is_journal()
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
    assert not journald.stderr_is_journal()
    monkeypatch.delenv("JOURNAL_STREAM")
    assert not journald.stderr_is_journal()


def test_journald_without_systemd_python_falls_back_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    # Drop any loaded copy, then make `import systemd` fail as it does where it is missing.
    for module in [m for m in sys.modules if m == "systemd" or m.startswith("systemd.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "systemd", None)
    monkeypatch.setattr(journald, "SOCKET", tmp_path / "journal.socket")
    (tmp_path / "journal.socket").touch()  # "journald runs"
    logs = tmp_path / "var/log/richc"
    (logs / "web01").mkdir(parents=True)
    log.setup(debug=False, logs_dir=logs, journal=None)
    assert not any(isinstance(h, log.JournalHandler) for h in logging.getLogger().handlers)
    with log.fields(container="web01", operation="start"):
        logging.getLogger("richc").warning("first record")
        logging.getLogger("richc.lifecycle").info("second record")
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    assert err.count("systemd-python is missing") == 1
    assert "first record" in err and "second record" in err
    text = (logs / "web01/richc.log").read_text()
    assert "RICHC_OPERATION=start first record" in text and "second record" in text
