"""`richc lxcfs status|remount|watch|start|stop`: lxcfs health and recovery without restarts."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Annotated, Any

import typer

from richc.cli.app import app, context
from richc.cli.output import Format, FormatOpt, emit_json, emit_table

lxcfs_app = typer.Typer(
    help="lxcfs /proc views: health, recovery after an lxcfs restart.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(lxcfs_app, name="lxcfs")


def _yes_no(value: object) -> str:
    return "yes" if value is True else "no" if value is False else "-"


@lxcfs_app.command("status")
def status(ctx: typer.Context, output: FormatOpt = Format.table) -> int:
    """Show whether lxcfs serves on the host, and whether each running container's views
    are mounted and readable. Exits 1 when anything is unhealthy.

    Example: richc lxcfs status --format json
    """
    from richc import lxcfs_ops

    info = lxcfs_ops.status(context(ctx))
    # No lxcfs at all is fine while no running container wants views; a dead one is not.
    host_ok = info["host"]["healthy"] or (
        info["host"]["state"] == "absent" and not info["containers"]
    )
    healthy = host_ok and all(c["healthy"] for c in info["containers"])
    if output is Format.json:
        emit_json(info)
        return 0 if healthy else 1
    host = info["host"]
    emit_table(
        ["NAME", "PID", "HEALTHY", "DETAIL"],
        [["(host) " + host["home"], host["pid"], _yes_no(host["healthy"]), _host_detail(host)]]
        + [
            [c["name"], c["pid"], _yes_no(c["healthy"]), _container_detail(c)]
            for c in info["containers"]
        ],
    )
    return 0 if healthy else 1


def _host_detail(host: dict[str, Any]) -> str:
    if host["healthy"]:
        return f"{host['managed_by']}, {len(host['views'])} views"
    return str(host["state"]) + (f": {host['error']}" if host["error"] else "")


def _container_detail(c: dict[str, Any]) -> str:
    if c["error"]:
        return str(c["error"])
    bad = [v for v in c["views"] if not (v["mounted"] and v["readable"])]
    if not bad:
        return f"{len(c['views'])} views"
    errors = {v["error"] for v in bad}
    if len(bad) == len(c["views"]) and len(errors) == 1:
        return f"all {len(bad)} views: {errors.pop()}"
    return "; ".join(f"{v['target']}: {v['error']}" for v in bad)


@lxcfs_app.command("remount")
def remount(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Containers (default: every running one).")
    ] = None,
    output: FormatOpt = Format.table,
) -> int:
    """Restart lxcfs if it died, then re-attach the views inside running containers, in
    their own mount namespaces: no container restarts. Exits 1 if any view failed.

    Example: richc lxcfs remount web01 db01
    """
    from richc import lxcfs_ops

    result = lxcfs_ops.remount(context(ctx), names or [])
    ok = all(c["ok"] for c in result["containers"])
    if output is Format.json:
        emit_json(result)
        return 0 if ok else 1
    host = result["host"]
    if host["restarted"]:
        print(f"lxcfs restarted on {host['home']} (pid {host['pid']})", file=sys.stderr)
    emit_table(
        ["NAME", "PID", "RESULT"],
        [
            [
                c["name"],
                c["pid"],
                f"{len(c['views'])} views re-attached"
                if c["ok"]
                else "failed: "
                + (
                    c["error"]
                    or "; ".join(f"{v['target']}: {v['error']}" for v in c["views"] if v["error"])
                ),
            ]
            for c in result["containers"]
        ],
    )
    return 0 if ok else 1


@lxcfs_app.command("watch")
def watch(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(help="Seconds between checks.", min=0.1)] = 2.0,
) -> None:
    """Keep lxcfs running and every container's views attached, until SIGTERM or Ctrl-C.

    Meant for a service unit beside lxcfs (see README: "lxcfs recovery").

    Example: richc lxcfs watch --interval 1
    """
    from richc import lxcfs_ops

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"watching lxcfs every {interval:g} s", file=sys.stderr)
    lxcfs_ops.watch(context(ctx), interval=interval, stop=stop)


@lxcfs_app.command("start")
def start(ctx: typer.Context) -> None:
    """Make lxcfs serve the configured home (start it, or restart a dead one).

    Example: richc lxcfs start
    """
    from richc.hostres import lxcfs

    process, started = lxcfs.ensure_serving(context(ctx).paths)
    what = "started" if started else "already serving"
    print(f"lxcfs {what} on {process.home} (pid {process.pid or '?'})", file=sys.stderr)


@lxcfs_app.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop the lxcfs richc started (never one it did not); running containers' views go
    dead until `richc lxcfs remount`.

    Example: richc lxcfs stop
    """
    from richc.hostres import lxcfs

    stopped = lxcfs.stop_started(context(ctx).paths)
    print("lxcfs stopped" if stopped else "no lxcfs started by richc is running", file=sys.stderr)
