"""`richc hooks list|validate|run`: what would run, is hooks.d sound, run one stage by hand."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from richc.cli.app import app, context
from richc.cli.output import Format, FormatOpt, emit_json, emit_table

hooks_app = typer.Typer(
    help="Hooks run at prestart, poststart, prestop and poststop.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(hooks_app, name="hooks")


@hooks_app.command("list")
def list_hooks(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Container: show exactly what runs for it.")
    ] = None,
    output: FormatOpt = Format.table,
) -> None:
    """Show the hooks of each stage, in running order, and where each comes from.

    Examples:

      richc hooks list

      richc hooks list web01 --format json
    """
    from richc.hookrun import inventory

    rows = inventory.listing(context(ctx), name)
    if output is Format.json:
        emit_json(rows)
        return
    emit_table(
        ["STAGE", "SOURCE", "HOOK", "PATH", "TIMEOUT", "ON_FAILURE", "NOTE"],
        [
            [
                r["stage"],
                r["source"],
                r["hook"] if r["runs"] else f"({r['hook']})",
                " ".join([r["path"], *r["args"]]),
                f"{r['timeout']:g}s",
                r["on_failure"],
                r["note"] or None,
            ]
            for r in rows
        ],
    )


@hooks_app.command("validate")
def validate(ctx: typer.Context, output: FormatOpt = Format.table) -> int:
    """Check every file in hooks.d: OCI JSON schema, executability, ownership and mode.

    Exits 1 when a hook would be refused or fail to load.
    """
    from richc.hookrun import inventory

    findings = inventory.validate(context(ctx))
    if output is Format.json:
        emit_json([f.to_dict() for f in findings])
    else:
        emit_table(["LEVEL", "PATH", "MESSAGE"], [[f.level, f.path, f.message] for f in findings])
    return 1 if any(f.level == "error" for f in findings) else 0


@hooks_app.command("run")
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Container name.", metavar="NAME")],
    stage: Annotated[str, typer.Argument(help="prestart, poststart, prestop or poststop.")],
    output: FormatOpt = Format.table,
) -> int:
    """Run the hooks of one stage for NAME now, for debugging (nothing is started or stopped).

    Output goes to the container's hook log (`richc logs --hooks NAME`). Exits 1 if a hook
    failed.

    Example: richc hooks run web01 poststart
    """
    from richc.hookrun import inventory

    outcome = inventory.run_by_hand(context(ctx), name, inventory.parse_stage(stage))
    for result in outcome.results:  # the hooks' own words, for whoever is debugging them
        for line in result.output.splitlines():
            print(f"{result.hook.label}: {line}", file=sys.stderr)
    if output is Format.json:
        emit_json([r.to_dict() for r in outcome.results])
    else:
        emit_table(
            ["HOOK", "RESULT", "MS"],
            [
                [r.hook.label, "ok" if r.ok else r.describe().removeprefix(r.hook.label + " "),
                 f"{r.duration * 1000:.0f}"]
                for r in outcome.results
            ],
        )  # fmt: skip
    return 1 if outcome.failures else 0
