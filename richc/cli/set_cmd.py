"""`richc set NAME KEY=VALUE...`: change a container's settings live and persist them.

Each key has one setter in SETTERS; add a key by adding a setter. Only ``disk=`` exists so
far (resources add memory=, cpus=, cpuset=, pids=, env.K= here).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from richc.cli.app import app, context
from richc.context import Context
from richc.errors import UsageError


def _set_disk(ctx: Context, name: str, value: str) -> str:
    from richc import disk
    from richc.units import parse_size

    size = parse_size("disk", value)
    info = disk.set_size(ctx, name, size)
    return f"disk limit of {name} is now {info['limit_bytes']} bytes ({info['backend']})"


SETTERS: dict[str, Callable[[Context, str, str], str]] = {"disk": _set_disk}


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Container name.", metavar="NAME")],
    settings: Annotated[list[str], typer.Argument(help="KEY=VALUE, e.g. disk=20G.")],
) -> None:
    """Change settings of NAME live (where the kernel allows) and persist them.

    Example: richc set web01 disk=20G
    """
    rctx = context(ctx)
    pairs: list[tuple[str, str]] = []
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise UsageError(f"expected KEY=VALUE, got {item!r}", hint="richc set NAME disk=20G")
        if key not in SETTERS:
            raise UsageError(
                f"unknown setting {key!r}", hint=f"settable here: {', '.join(sorted(SETTERS))}"
            )
        pairs.append((key, value))
    results: list[Any] = [SETTERS[key](rctx, name, value) for key, value in pairs]
    for line in results:
        print(line, file=sys.stderr)
