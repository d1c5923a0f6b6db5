"""`richc set NAME KEY=VALUE...`: change a container's settings live and persist them.

The logic (validation of every key first, live cgroup writes with rollback, env files,
config.yaml, and ``disk=`` through richc.disk.set_size) lives in richc.reconfigure.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from richc.cli.app import app, context


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Container name.", metavar="NAME")],
    settings: Annotated[
        list[str],
        typer.Argument(
            help="KEY=VALUE: memory, memory_swap, memory_reservation, cpus, cpu_shares,"
            " cpu_weight, cpuset, pids, io_weight, device_read_bps (DEV:RATE,...), ...,"
            " ulimit.NAME, env.NAME, disk, disk.inodes. An empty VALUE removes the limit or"
            " variable.",
            metavar="KEY=VALUE...",
        ),
    ],
) -> None:
    """Change settings of NAME at once if it runs, and persist them for the next start.

    All or nothing: if one KEY=VALUE is invalid, nothing changes.

    Examples:

      richc set web01 memory=1G cpus=2 pids=500

      richc set web01 env.APP_ENV=prod env.DEBUG=

      richc set web01 disk=20G disk.inodes=100000
    """
    from richc import reconfigure as settings_mod

    outcome = settings_mod.apply(context(ctx), name, settings)
    for line in outcome.messages:
        print(line, file=sys.stderr)
