"""The CLI imports only the module of the command it runs; the map must stay complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from richc import cli
from richc.cli.app import app


def _top_level_names() -> set[str]:
    for module in set(cli.COMMAND_MODULES.values()):
        __import__(f"richc.cli.{module}")
    commands = {
        c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
    }
    groups = {g.name or "" for g in app.registered_groups}
    return commands | groups


def test_every_command_is_mapped_to_its_module() -> None:
    assert _top_level_names() == set(cli.COMMAND_MODULES)


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["exec", "web01", "--", "ps"], "exec"),
        (["--root", "/srv/x", "list"], "list"),
        (["--root=/srv/x", "--debug", "start", "web01"], "start"),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_command_word_is_found_after_the_global_options(
    argv: list[str], word: str | None
) -> None:
    assert cli.invoked_command(argv) == word


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import sys; from richc import cli; cli._register_commands(sys.argv[1:]); "
        "print(' '.join(m for m in sys.modules if m.startswith('richc.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    return set(out.stdout.split())


def test_a_named_command_imports_only_its_module() -> None:
    loaded = _modules_after(["--root", "/tmp", "exec", "x", "--", "true"])
    assert "richc.cli.containers" in loaded
    assert not loaded & {"richc.cli.doctor_cmd", "richc.cli.lxcfs_cmd", "richc.cli.set_cmd"}


def test_help_and_unknown_words_import_every_command() -> None:
    every = {f"richc.cli.{m}" for m in cli.COMMAND_MODULES.values()}
    assert every <= _modules_after(["--help"])
    assert every <= _modules_after(["no-such-command"])


def test_typer_builds_only_the_invoked_command() -> None:
    code = (
        "import sys; from richc import cli; from richc.cli.app import app; "
        "cli._register_commands(sys.argv[1:]); "
        "print(' '.join(cli._command_name(c) for c in app.registered_commands)); "
        "cli._register_commands(['list']); "
        "print(' '.join(cli._command_name(c) for c in app.registered_commands))"
    )
    argv = ["exec", "x", "--", "true"]
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    first, second = out.stdout.splitlines()
    assert first == "exec"
    assert second == "list", "a second call in one process must still find its command"


def test_the_console_script_exits_with_the_code_and_runs_atexit(tmp_path: Path) -> None:
    # run() ends in os._exit; what a normal exit would still do must happen first: the
    # command's exit code, atexit handlers, and buffered output reaching the reader.
    code = (
        "import atexit, sys; from richc import cli; "
        "atexit.register(lambda: print('atexit ran', flush=True)); "
        "sys.stdout.write('buffered '); "
        "sys.argv = ['richc', '--root', sys.argv[1], 'inspect', 'nonexistent']; cli.run()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert out.stdout == "buffered atexit ran\n"
    assert out.stderr.startswith("error: no container named nonexistent")
