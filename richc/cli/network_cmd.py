"""`richc network create|list|inspect|rm` and `richc port NAME`: managed networks (a
bridge with NAT, DHCP and DNS of container names) and the ports published to containers."""

from __future__ import annotations

from typing import Annotated

import typer

from richc.cli.app import app, context
from richc.cli.output import Format, FormatOpt, emit_json, emit_table

network_app = typer.Typer(
    help="Managed networks: a bridge with NAT, DHCP and DNS of container names.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(network_app, name="network")

NetworkName = Annotated[str, typer.Argument(help="Network name.", metavar="NAME")]


@network_app.command("create")
def create(
    ctx: typer.Context,
    name: NetworkName,
    subnet: Annotated[
        str | None, typer.Option(help="IPv4 subnet, e.g. 10.77.0.0/24 (default: a free /24).")
    ] = None,
    nat: Annotated[
        bool, typer.Option("--nat/--no-nat", help="Masquerade traffic leaving the host.")
    ] = True,
    ipv6: Annotated[str, typer.Option(help="auto (a ULA /64), none, or an IPv6 /64.")] = "none",
    output: FormatOpt = Format.table,
) -> None:
    """Create a managed network and bring it up.

    Examples:

      richc network create backend --subnet 10.78.0.0/24

      richc network create isolated --no-nat
    """
    from richc import networks

    rctx = context(ctx)
    network = networks.create(rctx.paths, name, subnet=subnet, nat=nat, ipv6=ipv6)
    if output is Format.json:
        emit_json(network.to_dict())
        return
    print(f"created network {name}: {network.subnet} on bridge {network.bridge}")


@network_app.command("list")
def list_networks(ctx: typer.Context, output: FormatOpt = Format.table) -> None:
    """List the managed networks.

    Example: richc network list -f json
    """
    from richc import networks

    rctx = context(ctx)
    rows = [networks.describe(rctx.paths, rctx.store, n) for n in networks.all_networks(rctx.paths)]
    if output is Format.json:
        emit_json(rows)
        return
    emit_table(
        ["NAME", "SUBNET", "GATEWAY", "BRIDGE", "NAT", "UP", "CONTAINERS"],
        [
            [
                r["name"],
                r["subnet"],
                r["gateway"],
                r["bridge"],
                "yes" if r["nat"] else "no",
                {True: "yes", False: "no", None: "?"}[r["up"]],
                ",".join(r["containers"]) or "-",
            ]
            for r in rows
        ],
    )


@network_app.command("inspect")
def inspect(ctx: typer.Context, name: NetworkName) -> None:
    """Show a network as JSON: subnet, bridge, dnsmasq, its containers.

    Example: richc network inspect richc0
    """
    from richc import networks

    rctx = context(ctx)
    emit_json(networks.describe(rctx.paths, rctx.store, networks.load(rctx.paths, name)))


@network_app.command("rm")
def rm(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Network names.", metavar="NAME...")],
    force: Annotated[
        bool, typer.Option("--force", help="Remove it even while containers are on it.")
    ] = False,
) -> None:
    """Remove networks: the bridge, its dnsmasq and its rules (nothing of another tool's).

    Example: richc network rm backend
    """
    from richc import networks

    rctx = context(ctx)
    for name in names:
        networks.remove(rctx.paths, name, rctx.store, force=force)
        print(f"removed network {name}")


@app.command()
def port(ctx: typer.Context, name: str, output: FormatOpt = Format.table) -> None:
    """List the ports published to a container.

    Example: richc port web01
    """
    from richc.hostres.net import describe

    rctx = context(ctx)
    cdir = rctx.store.get(name)
    ports = describe(cdir.load_state().net, cdir.load_config())["ports"]
    if output is Format.json:
        emit_json(ports)
        return
    for p in ports:
        host = p["host_ip"] or "0.0.0.0"
        print(f"{p['container_port']}/{p['proto']} -> {host}:{p['host_port']}")
