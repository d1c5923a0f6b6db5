"""richc's command line. ``main`` is the one place errors become exit codes."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
import traceback
from typing import Any

from richc.cli.app import app

__all__ = ["app", "main"]


# Which module adds each top-level command. Building typer's click tree costs about 1.5 ms
# per command, and importing every command module a few more: a command line that names
# its command gets only that module (``richc exec`` is on the hot path of scripts).
COMMAND_MODULES = {
    **dict.fromkeys(
        ("create", "start", "stop", "restart", "rm", "list", "ps", "inspect", "exec"),
        "containers",
    ),
    "logs": "logs_cmd",
    "console": "logs_cmd",
    "doctor": "doctor_cmd",
    "hooks": "hooks_cmd",
    "lxcfs": "lxcfs_cmd",
    "quota": "quota_cmd",
    "unit": "unit_cmd",
    "stats": "stats_cmd",
    "set": "set_cmd",
    "network": "network_cmd",
    "port": "network_cmd",
    "migrate": "migrate_cmd",
}
# Global options that take a value, so the word after them is not the command.
_VALUED_GLOBALS = ("--root",)


def invoked_command(argv: list[str]) -> str | None:
    """The command word of *argv* (after the global options), or None if there is none."""
    words = iter(argv)
    for word in words:
        if word in _VALUED_GLOBALS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


# Every top-level command imported so far; ``app.registered_commands`` is narrowed per call.
_all_commands: list[Any] = []


def _register_commands(argv: list[str]) -> None:
    # Each command module adds its commands to ``app`` on import. --help, completion and
    # an unknown word need them all (to list them, or to say "no such command").
    word = invoked_command(argv) or ""
    module = COMMAND_MODULES.get(word)
    everything = module is None or "_RICHC_COMPLETE" in os.environ
    for name in sorted(set(COMMAND_MODULES.values())) if everything else [module]:
        importlib.import_module(f"richc.cli.{name}")
    _all_commands.extend(c for c in app.registered_commands if c not in _all_commands)
    # typer builds a click command from each function's signature (~1 ms apiece): for
    # `richc exec ...`, build exec alone, not the other eight of its module.
    app.registered_commands[:] = [
        c for c in _all_commands if everything or _command_name(c) == word
    ]


def _command_name(info: Any) -> str:
    name = info.name or info.callback.__name__.replace("_", "-")
    return str(name)


def main(argv: list[str] | None = None) -> int:
    import click

    from richc.errors import RichcError

    args = argv if argv is not None else sys.argv[1:]
    _register_commands(args)
    debug = "--debug" in args
    try:
        try:
            result = app(args=argv, prog_name="richc", standalone_mode=False)
        finally:
            # Every command imported so far, not the invoked one alone: a process that
            # calls main more than once (tests, an embedding tool) sees them all again.
            app.registered_commands[:] = _all_commands
        code = result if isinstance(result, int) else 0
    except RichcError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        code = getattr(exc, "exit_code", 1)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()  # usage errors carry exit_code 2
        code = exc.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        code = 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        # `richc list | head`: the reader left; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except OSError as exc:
        # The host said no (a --root that is a file, a full disk, a read-only mount): the
        # message names the path; the traceback only helps with --debug.
        if debug:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        print("hint: check that path and --root/RICHC_ROOT; --debug shows where", file=sys.stderr)
        code = 1
    except Exception:
        traceback.print_exc()
        print(
            "error: richc hit a bug (the traceback above); please report it",
            file=sys.stderr,
        )
        code = 1
    if "logging" in sys.modules:  # flush richc.log and journald handlers, if any were made
        sys.modules["logging"].shutdown()
    return code


def run() -> None:
    """The console script: :func:`main`, then an exit that skips the interpreter's teardown."""
    code = main()
    # Tearing the interpreter down (a garbage collection over every object typer, click
    # and richc made, then each module) takes about 20 ms, a sixth of a short command.
    # Nothing depends on it: state files are renamed into place by then, main() shut
    # logging down, and atexit handlers still run here. Daemon threads (an lxcfs probe
    # stuck on a hung mount) are dropped, as a normal exit would drop them.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # The reader left (`richc list | head`), or the stream was closed.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
