"""`richc migrate sync|cutover|report NAME`: finishing a migration after `create`."""

from __future__ import annotations

from typing import Annotated

import typer

from richc.cli.app import app, context
from richc.cli.output import Format, FormatOpt, emit_json

migrate_app = typer.Typer(
    help="Finish a migration: re-sync from a live host, cut over, report.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(migrate_app, name="migrate")

Name = Annotated[str, typer.Argument(help="Container name.", metavar="NAME")]


@migrate_app.command("sync")
def sync(ctx: typer.Context, name: Name, output: FormatOpt = Format.table) -> None:
    """Bring a stopped container made from ssh://USER@HOST up to date with the host.

    Example: richc migrate sync db01
    """
    from richc import migrate

    result = migrate.sync(context(ctx), name)
    if output is Format.json:
        emit_json(result)
        return
    print(f"synced {name} from {result['source']} in {result['seconds']} s")


@migrate_app.command("cutover")
def cutover(
    ctx: typer.Context,
    name: Name,
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait for the stop.")] = None,
    output: FormatOpt = Format.table,
) -> None:
    """Stop the container if it runs, sync it from its live host a last time, start it.

    Example: richc migrate cutover db01
    """
    from richc import migrate

    result = migrate.cutover(context(ctx), name, timeout=timeout)
    if output is Format.json:
        emit_json(result)
        return
    print(f"cut over {name}: synced in {result['seconds']} s, started (pid {result['pid']})")


@migrate_app.command("report")
def report(ctx: typer.Context, name: Name, output: FormatOpt = Format.table) -> None:
    """After the first boot: failed units and why, what was masked or dropped, whether the
    network identity was kept, and what to check.

    Example: richc migrate report web01 --format json
    """
    from richc import migrate

    info = migrate.report(context(ctx), name)
    if output is Format.json:
        emit_json(info)
        return
    print(f"{name}: from {info['source']} ({info['init']} init, {info['runtime']} runtime)")
    state = "running" if info["running"] else "not running"
    print(
        f"  state: {state}" + (f", systemd {info['system_state']}" if info["system_state"] else "")
    )
    if info["failed_units"] is not None:
        print(f"  failed units: {len(info['failed_units'])}")
        for unit in info["failed_units"]:
            print(f"    {unit['unit']}: {unit['why']}")
    print(f"  network: {info['network']['detail']}")
    print(f"  masked: {len(info['masked'])}")
    for item in info["masked"]:
        print(f"    {item['path']}: {item['reason']}")
    print(f"  dropped: {len(info['dropped'])}")
    for item in info["dropped"]:
        print(f"    {item['path']}: {item['reason']}")
    print("  check:" if info["checks"] else "  check: nothing stands out")
    for line in info["checks"]:
        print(f"    - {line}")
