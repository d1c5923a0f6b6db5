"""richc's command line. ``main`` is the one place errors become exit codes."""

from __future__ import annotations

import logging
import os
import sys
import traceback

from richc.cli.app import app

__all__ = ["app", "main"]


def _register_commands() -> None:
    # Each command group lives in its own module and adds itself to ``app`` on import.
    from richc.cli import containers  # noqa: F401

    optional_modules = (
        "logs_cmd", "doctor_cmd", "hooks_cmd", "lxcfs_cmd", "quota_cmd", "unit_cmd", "stats_cmd",
        "set_cmd",
    )  # fmt: skip
    for optional in optional_modules:
        try:
            __import__(f"richc.cli.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"richc.cli.{optional}":
                raise


def main(argv: list[str] | None = None) -> int:
    import click

    from richc.errors import RichcError

    _register_commands()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        result = app(args=argv, prog_name="richc", standalone_mode=False)
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
    logging.shutdown()
    return code


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
