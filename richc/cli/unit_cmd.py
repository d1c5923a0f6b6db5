"""`richc unit install|remove|show`: the container's systemd unit."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from richc.cli.app import app, context

unit_app = typer.Typer(help="The systemd unit of a container (richc@NAME.service).")
app.add_typer(unit_app, name="unit")

NameArg = Annotated[str, typer.Argument(help="Container name.", metavar="NAME")]


@unit_app.command("install")
def install(
    ctx: typer.Context,
    name: NameArg,
    enable: Annotated[
        bool, typer.Option("--enable", help="Start it at boot (through richc.target).")
    ] = False,
    now: Annotated[bool, typer.Option("--now", help="Start the unit now.")] = False,
) -> None:
    """Write richc@.service and the container's drop-in; optionally enable and start it.

    Where systemd is not running, the files are written (and --enable makes its links
    offline); --now then fails, as there is no systemd to start the unit.

    Example: richc unit install web01 --enable --now
    """
    from richc import systemd_unit

    result = systemd_unit.install(context(ctx), name, enable=enable, now=now)
    for path in result.written:
        print(f"wrote {path}", file=sys.stderr)
    for note in result.notes:
        print(note, file=sys.stderr)
    done = [w for w, flag in (("enabled", result.enabled), ("started", result.started)) if flag]
    print(f"installed {result.unit}" + (f" ({', '.join(done)})" if done else ""), file=sys.stderr)


@unit_app.command("remove")
def remove(ctx: typer.Context, name: NameArg) -> None:
    """Stop and disable the container's unit (where systemd runs) and remove its files.

    Example: richc unit remove web01
    """
    from richc import systemd_unit

    for path in systemd_unit.remove(context(ctx), name):
        print(f"removed {path}", file=sys.stderr)
    print(f"removed {systemd_unit.instance_unit(name)}", file=sys.stderr)


@unit_app.command("show")
def show(ctx: typer.Context, name: NameArg) -> None:
    """Print the unit richc writes for the container: the template, then its drop-in.

    Example: richc unit show web01
    """
    from richc import systemd_unit

    sys.stdout.write(systemd_unit.show(context(ctx), name))
