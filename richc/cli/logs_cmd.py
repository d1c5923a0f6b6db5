"""`richc logs` and `richc console`: a container's console output, and its console itself."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from richc.cli.app import app, context


@app.command()
def logs(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    follow: Annotated[
        bool, typer.Option("--follow", "-F", help="Keep printing new output.")
    ] = False,
    hooks: Annotated[bool, typer.Option("--hooks", help="Show the hook log instead.")] = False,
) -> None:
    """Print what the container's init wrote to its console (or the hook log).

    Examples:

      richc logs web01

      richc logs --follow web01
    """
    cdir = context(ctx).store.get(name)
    path = cdir.log_dir / ("hooks.log" if hooks else "console.log")
    try:
        handle = open(path, "rb")  # noqa: SIM115 - kept open while following
    except FileNotFoundError:
        if not follow:
            return
        while not path.exists():
            time.sleep(0.2)
        handle = open(path, "rb")  # noqa: SIM115
    with handle:
        out = sys.stdout.buffer
        while True:
            chunk = handle.read(65536)
            if chunk:
                out.write(chunk)
                out.flush()
                continue
            if not follow:
                return
            time.sleep(0.2)


@app.command()
def console(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
) -> None:
    """Attach the terminal to the container's console (Ctrl-a q detaches).

    Example: richc console web01
    """
    from richc.errors import UsageError
    from richc.runtime import runtime_for

    rctx = context(ctx)
    cdir = rctx.store.get(name)
    state = cdir.load_state()
    runtime = runtime_for(state)
    if not runtime.status(cdir).running:
        raise UsageError(f"{name} is not running", hint=f"start it with `richc start {name}`")
    attach = getattr(runtime, "console", None)
    if attach is None:
        raise UsageError(
            f"the {runtime.name} runtime has no interactive console",
            hint=f"use `richc exec {name} -- sh` or `richc logs {name}`",
        )
    attach(cdir)
