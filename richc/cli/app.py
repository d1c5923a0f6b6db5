"""The typer application and its global options (--root, --debug)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    # Imported where a command runs: the store, state and config modules it brings cost a
    # third of `richc --help`, which never builds a context.
    from richc.context import Context

app = typer.Typer(
    name="richc",
    help=(
        "Manage rich containers: system containers whose PID 1 is a real init.\n\n"
        "Examples:\n\n"
        "  richc create web01 --from busybox --memory 512M --start\n\n"
        "  richc exec web01 -- ps\n\n"
        "  richc list --format json"
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def global_options(
    ctx: typer.Context,
    root: Annotated[
        str,
        typer.Option(
            "--root",
            envvar="RICHC_ROOT",
            help="Keep all host state (etc, var/lib, run, var/log) under this directory.",
        ),
    ] = "/",
    debug: Annotated[bool, typer.Option("--debug", help="Log every step and command.")] = False,
) -> None:
    from richc import log, templating
    from richc.context import Context
    from richc.paths import HostPaths

    paths = HostPaths.from_root(root)
    templating.cache_dir = paths.templates_cache
    # journald with RICHC_* fields where it runs; stderr + the container's richc.log otherwise.
    log.setup(debug=debug, logs_dir=paths.logs)
    log.bind(operation=ctx.invoked_subcommand)
    ctx.obj = Context(paths=paths, debug=debug)


def context(ctx: typer.Context) -> Context:
    from richc.context import Context

    obj = ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj
