"""`richc stats [NAME...] [--format table|json] [--watch]`: live resource usage."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from richc.cli.app import app, context
from richc.cli.output import Format, FormatOpt, emit_json, emit_table

HEADERS = [
    "NAME", "STATE", "CPU %", "CPU TIME", "MEM USAGE / LIMIT", "MEM %", "PIDS", "BLOCK I/O",
    "NET I/O",
]  # fmt: skip


def _size(value: int | None) -> str:
    from richc.sizes import format_size

    return "-" if value is None else format_size(value)


def _row(item: dict[str, Any], host_memory: int) -> list[Any]:
    memory, cpu, pids = item["memory"], item["cpu"], item["pids"]
    if item["state"] != "running":
        return [item["name"], item["state"], *(["-"] * (len(HEADERS) - 2))]
    limit = memory["limit_bytes"]
    shown_limit = _size(limit) if limit else f"{_size(host_memory)} (host)"
    percent = memory["percent"]
    if percent is None and memory["used_bytes"] is not None and host_memory:
        percent = round(memory["used_bytes"] * 100 / host_memory, 1)
    io, net = item["io"], item["net"]
    return [
        item["name"],
        item["state"],
        "-" if cpu["percent"] is None else f"{cpu['percent']:.1f}",
        "-" if cpu["seconds"] is None else f"{cpu['seconds']:.1f}s",
        f"{_size(memory['used_bytes'])} / {shown_limit}",
        "-" if percent is None else f"{percent:.1f}",
        f"{pids['current'] if pids['current'] is not None else '-'}"
        + (f" / {pids['limit']}" if pids["limit"] is not None else ""),
        f"{_size(io['read_bytes'])} / {_size(io['write_bytes'])}",
        f"{_size(net['rx_bytes'])} / {_size(net['tx_bytes'])}",
    ]


def _host_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


@app.command()
def stats(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Containers (default: all running).", metavar="[NAME...]"),
    ] = None,
    output: FormatOpt = Format.table,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh until interrupted (Ctrl-C).")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            help="Seconds between the two CPU readings (and between refreshes);"
            " 0 reads once and reports no CPU percent.",
            min=0.0,
        ),
    ] = 0.5,
) -> int:
    """Show memory, CPU, pids, block and network IO of running containers.

    Read from the cgroup files on the host; CPU % is over --interval, 100 % = one CPU.

    Examples:

      richc stats

      richc stats web01 --format json

      richc stats --watch --interval 2
    """
    from richc import stats as stats_mod

    rctx = context(ctx)
    selected = list(names or [])
    if not watch:
        items = stats_mod.collect(rctx, selected, interval)
        if output is Format.json:
            emit_json(items)
        else:
            emit_table(HEADERS, [_row(i, _host_memory()) for i in items])
        return 0
    targets = stats_mod.targets(rctx, selected)
    stats_mod.sample(targets)  # the baseline for the first CPU percent
    host_memory = _host_memory()
    pause = interval or 1.0
    try:
        while True:
            time.sleep(pause)
            if not selected:
                # Containers started since the last refresh join; stopped ones leave.
                known = {t.name: t for t in targets}
                targets = [known.get(t.name, t) for t in stats_mod.targets(rctx, selected)]
            items = stats_mod.sample(targets)
            if output is Format.json:
                # One document per line while watching (JSON Lines), for a consumer to stream.
                sys.stdout.write(json.dumps(items) + "\n")
            else:
                sys.stdout.write("\x1b[H\x1b[2J")  # home and clear, as top does
                emit_table(HEADERS, [_row(i, host_memory) for i in items])
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
