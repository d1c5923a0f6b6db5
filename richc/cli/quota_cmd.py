"""`richc quota show NAME`: a container's disk usage against its limit."""

from __future__ import annotations

from typing import Annotated

import typer

from richc.cli.app import app, context
from richc.cli.output import Format, FormatOpt, emit_json, emit_table

quota_app = typer.Typer(help="Disk quotas.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(quota_app, name="quota")


def _human(size: int | None) -> str | None:
    if size is None:
        return None
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return None


@quota_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Container name.", metavar="NAME")],
    output: FormatOpt = Format.table,
) -> None:
    """Show the disk usage of NAME against its limit, bytes and inodes (bytes in JSON).

    Example: richc quota show web01
    """
    from richc.hostres import disk

    rctx = context(ctx)
    cdir = rctx.store.get(name)
    info = {"name": name, **disk.view(rctx, cdir, cdir.load_state())}
    if output is Format.json:
        emit_json(info)
        return
    limit, used = info["limit_bytes"], info["used_bytes"]
    ilimit, iused = info["limit_inodes"], info["used_inodes"]
    emit_table(
        ["NAME", "BACKEND", "LIMIT", "USED", "USE%", "INODES", "IUSED", "IUSE%"],
        [
            [
                name,
                info["backend"] or "none",
                _human(limit),
                _human(used),
                _percent(used, limit),
                ilimit,
                iused,
                _percent(iused, ilimit),
            ]
        ],
    )


def _percent(used: int | None, limit: int | None) -> str | None:
    return f"{100 * used / limit:.0f}%" if limit and used is not None else None
