"""Container commands: create, start, stop, restart, rm, list/ps, inspect, exec."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from richc.cli.app import app, context
from richc.cli.output import Format, FormatOpt, emit_json, emit_table

# Status lines are log records, so that with journald they carry RICHC_CONTAINER and
# RICHC_OPERATION (richc.log); on a terminal they read as before.
_log = logging.getLogger("richc")


def _bind(name: str) -> None:
    from richc import log

    log.bind(container=name)


NameArg = Annotated[str, typer.Argument(help="Container name.", metavar="NAME")]


def _complete_names(ctx: typer.Context, incomplete: str) -> list[str]:
    from richc.paths import HostPaths
    from richc.store import Store

    root = ctx.find_root().params.get("root") or "/"
    return [n for n in Store(HostPaths.from_root(root)).names() if n.startswith(incomplete)]


CompletedName = Annotated[
    str, typer.Argument(help="Container name.", metavar="NAME", autocompletion=_complete_names)
]


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Container name (or `name:` in --config).")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--from", help="busybox, debian:SUITE, dir:PATH, tar:PATH or a path."),
    ] = None,
    init: Annotated[
        str | None, typer.Option(help="auto, systemd, sysvinit, busybox or dumb-init.")
    ] = None,
    memory: Annotated[str | None, typer.Option(help="Memory limit, e.g. 512M.")] = None,
    cpus: Annotated[str | None, typer.Option(help="CPU quota, e.g. 1.5.")] = None,
    cpuset: Annotated[str | None, typer.Option(help="CPUs it may use, e.g. 0-1.")] = None,
    pids: Annotated[str | None, typer.Option(help="Maximum number of processes.")] = None,
    memory_swap: Annotated[
        str | None, typer.Option(help="Memory plus swap, e.g. 1G (at least --memory).")
    ] = None,
    memory_reservation: Annotated[
        str | None, typer.Option(help="Soft memory floor kept under pressure, e.g. 256M.")
    ] = None,
    cpu_shares: Annotated[
        str | None, typer.Option(help="Relative CPU share, 2-262144 (v1 scale).")
    ] = None,
    cpu_weight: Annotated[
        str | None, typer.Option(help="Relative CPU weight, 1-10000 (v2 scale).")
    ] = None,
    io_weight: Annotated[
        str | None, typer.Option(help="Relative IO weight, 10-1000 (BFQ disks).")
    ] = None,
    device_read_bps: Annotated[
        list[str] | None, typer.Option(help="DEVICE:RATE, e.g. /dev/sda:10M; repeatable.")
    ] = None,
    device_write_bps: Annotated[
        list[str] | None, typer.Option(help="DEVICE:RATE, e.g. /dev/sda:10M; repeatable.")
    ] = None,
    device_read_iops: Annotated[
        list[str] | None, typer.Option(help="DEVICE:IOPS, e.g. 8:0:1000; repeatable.")
    ] = None,
    device_write_iops: Annotated[
        list[str] | None, typer.Option(help="DEVICE:IOPS, e.g. 8:0:1000; repeatable.")
    ] = None,
    ulimit: Annotated[
        list[str] | None,
        typer.Option("--ulimit", help="NAME=SOFT[:HARD], e.g. nofile=1024:2048; repeatable."),
    ] = None,
    disk: Annotated[str | None, typer.Option(help="Disk quota for the rootfs, e.g. 10G.")] = None,
    disk_inodes: Annotated[
        str | None, typer.Option(help="Inode limit for the rootfs (with --disk), e.g. 10000.")
    ] = None,
    disk_backend: Annotated[
        str | None, typer.Option(help="Quota backend: auto, project, btrfs or loop.")
    ] = None,
    disk_quota_mode: Annotated[
        str | None,
        typer.Option(help="strict (default: fail if unenforceable) or best-effort (warn)."),
    ] = None,
    lxcfs: Annotated[
        bool | None, typer.Option("--lxcfs/--no-lxcfs", help="Bind lxcfs's /proc views.")
    ] = None,
    runtime: Annotated[str | None, typer.Option(help="auto, lxc or runc.")] = None,
    hostname: Annotated[str | None, typer.Option(help="Host name (default: NAME).")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="K=V, repeatable.")] = None,
    hook: Annotated[
        list[str] | None, typer.Option("--hook", help="STAGE=PATH, repeatable.")
    ] = None,
    annotation: Annotated[
        list[str] | None,
        typer.Option(
            "--annotation",
            help="K=V, repeatable: an OCI annotation hooks see (and `when.annotations` matches).",
        ),
    ] = None,
    net: Annotated[
        list[str] | None,
        typer.Option(
            "--net",
            help="none, host, a managed network (richc network create) or bridge:BR;"
            " repeatable, one NIC each (default: richc0 for busybox and debian).",
        ),
    ] = None,
    ip: Annotated[
        list[str] | None, typer.Option("--ip", help="The n-th NIC's address; repeatable.")
    ] = None,
    mac: Annotated[
        list[str] | None, typer.Option("--mac", help="The n-th NIC's MAC; repeatable.")
    ] = None,
    publish: Annotated[
        list[str] | None,
        typer.Option(
            "--publish",
            "-p",
            help="[HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp], to the first NIC; repeatable.",
        ),
    ] = None,
    root_partition: Annotated[
        str | None,
        typer.Option(help="With --from disk:IMAGE: the root partition (N, 0, or VG/LV)."),
    ] = None,
    ssh_key: Annotated[
        Path | None, typer.Option(help="With --from ssh://...: the identity file to log in.")
    ] = None,
    known_hosts: Annotated[
        Path | None,
        typer.Option(help="With --from ssh://...: accept only host keys in this file."),
    ] = None,
    keep_ip: Annotated[
        bool,
        typer.Option(
            "--keep-ip", help="Keep the static address the VM's own network config names."
        ),
    ] = False,
    restart: Annotated[str | None, typer.Option(help="no, on-failure or always.")] = None,
    privileged: Annotated[
        bool,
        typer.Option(
            "--privileged",
            help="No user namespace: container root is host root (for VMs that need it).",
        ),
    ] = False,
    seccomp: Annotated[
        str | None,
        typer.Option(
            "--seccomp",
            help="default (a deny list), unconfined (no filter), or a profile PATH"
            " (LXC seccomp text or OCI JSON).",
        ),
    ] = None,
    nesting: Annotated[
        bool,
        typer.Option(
            "--nesting",
            help="An unmasked /proc and /sys at /dev/.lxc, so unprivileged containers can"
            " start inside this one.",
        ),
    ] = False,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML file with the same settings.")
    ] = None,
    start: Annotated[bool, typer.Option("--start", help="Start it once created.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    output: FormatOpt = Format.table,
) -> None:
    """Create a container from a source.

    Examples:

      richc create web01 --from busybox --memory 512M --start

      richc create legacy --from tar:/srv/vm.tar.gz --init auto --disk 20G

      richc create --config web01.yaml

      richc create web02 --net richc0 --ip 10.77.0.20 --publish 8080:80

      richc create legacy --from tar:/srv/vm.tar.gz --keep-ip

      richc create web03 --from disk:/srv/vms/web03.qcow2 --keep-ip

      richc create db01 --from ssh://root@db01.example.internal --ssh-key ~/.ssh/migrate

      richc create oldvm --from tar:/srv/vm.tar.gz --privileged --seccomp unconfined

      richc create ci-host --from debian:bookworm --privileged --nesting
    """
    from richc import config as cfg
    from richc import lifecycle
    from richc.config import net as cfg_net
    from richc.config.limits import parse_ulimit_flags

    file_data = cfg.load_yaml(config_file) if config_file else {}
    flags: dict[str, Any] = {
        "name": name,
        "from": source,
        "init": init,
        "hostname": hostname,
        "limits": {
            "memory": memory,
            "cpus": cpus,
            "cpuset": cpuset,
            "pids": pids,
            "memory_swap": memory_swap,
            "memory_reservation": memory_reservation,
            "cpu_shares": cpu_shares,
            "cpu_weight": cpu_weight,
            "io_weight": io_weight,
            "device_read_bps": device_read_bps or None,
            "device_write_bps": device_write_bps or None,
            "device_read_iops": device_read_iops or None,
            "device_write_iops": device_write_iops or None,
            "ulimits": parse_ulimit_flags(ulimit or []) or None,
        },
        "disk": {
            "size": disk,
            "backend": disk_backend,
            "mode": disk_quota_mode,
            "inodes": disk_inodes,
        },
        "lxcfs": lxcfs,
        "runtime": runtime,
        "env": cfg.parse_key_values("--env", env or []) or None,
        "hooks": cfg.parse_hook_flags(hook or []) or None,
        "annotations": cfg.parse_key_values("--annotation", annotation or []) or None,
        "net": cfg_net.from_flags(net or [], ip or [], mac or [], publish or [], keep_ip),
        "restart": restart,
        "security": {
            "privileged": True if privileged else None,
            "seccomp": seccomp,
            "nesting": True if nesting else None,
        },
        "migrate": {
            k: v
            for k, v in (
                ("root_partition", root_partition),
                ("ssh_key", ssh_key and str(ssh_key)),
                ("known_hosts", known_hosts and str(known_hosts)),
            )
            if v is not None
        }
        or None,
    }
    merged = cfg.merge(file_data, flags)
    if not merged.get("name"):
        from richc.errors import UsageError

        raise UsageError("a container name is required", hint="richc create NAME [OPTIONS]")
    rctx = context(ctx)
    config = lifecycle.new_config(rctx, merged)  # host defaults, then checked against the host
    if dry_run:
        _print_plan(rctx, config, output)
        return
    state = lifecycle.create(rctx, config)
    print(f"created {config.name} ({state.init} init, {state.runtime} runtime)", file=sys.stderr)
    if not config.source.startswith(("busybox", "debian:")):
        print(
            f"hint: after its first start, `richc migrate report {config.name}` lists failed"
            " units, what was masked or dropped and whether its address was kept",
            file=sys.stderr,
        )
    if start:
        lifecycle.start(rctx, config.name)
        print(f"started {config.name}", file=sys.stderr)


def _print_plan(rctx: Any, config: Any, output: Format) -> None:
    from richc.plan import plan

    result = plan(rctx, config)
    if output is Format.json:
        emit_json(result)
        return
    print(f"would create {config.name} from {config.source}")
    for change in result["changes"]:
        print(f"  {change['action']:<8} {change['path']:<40} {change['reason']}")
    security = result["security"]
    mode = "privileged" if security["privileged"] else "unprivileged"
    print(f"security: {mode}: {security['why']}")
    if security["ownership"]:
        print(f"  rootfs ids: {security['ownership']}")
    for note in security["notes"]:
        print(f"  note: {note}")


@app.command()
def start(
    ctx: typer.Context,
    name: CompletedName,
    foreground: Annotated[
        bool,
        typer.Option(
            "--foreground",
            help="Stay attached until the container stops; restart it by its restart policy"
            " (what the systemd unit runs). Exit 0: stopped by request; 7: init died.",
        ),
    ] = False,
    max_restarts: Annotated[
        int,
        typer.Option(min=0, help="With --foreground and restart: on-failure, restarts in a row."),
    ] = 5,
    restart_delay: Annotated[
        float,
        typer.Option(
            min=0.0, help="With --foreground, seconds before the first restart (doubles)."
        ),
    ] = 1.0,
) -> int:
    """Start a container's init.

    Example: richc start web01

    Example: richc start --foreground web01
    """
    from richc import lifecycle

    rctx = context(ctx)
    _bind(name)
    if foreground:
        from richc.supervise import RestartRules, supervise

        return supervise(rctx, name, RestartRules(max_restarts, restart_delay))
    state = lifecycle.start(rctx, name)
    _log.info("started %s (pid %s)", name, state.pid)
    return 0


@app.command()
def stop(
    ctx: typer.Context,
    name: CompletedName,
    timeout: Annotated[
        float | None, typer.Option("--timeout", "-t", help="Seconds to wait before killing.")
    ] = None,
    kill: Annotated[bool, typer.Option("--kill", help="Kill at once, no clean shutdown.")] = False,
) -> None:
    """Ask init to shut down; kill it if it has not stopped after the timeout.

    Example: richc stop web01 --timeout 30
    """
    from richc import lifecycle

    _bind(name)
    clean = lifecycle.stop(context(ctx), name, timeout=timeout, kill=kill)
    _log.info("stopped %s%s", name, "" if clean else " (killed)")


@app.command()
def restart(
    ctx: typer.Context,
    name: CompletedName,
    timeout: Annotated[float | None, typer.Option("--timeout", "-t")] = None,
) -> None:
    """Stop and start a container.

    Example: richc restart web01
    """
    from richc import lifecycle

    _bind(name)
    lifecycle.restart(context(ctx), name, timeout=timeout)
    _log.info("restarted %s", name)


@app.command("rm")
def remove(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Containers to remove.", metavar="NAME...")],
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Kill it if running; clean up after a crash.")
    ] = False,
) -> None:
    """Remove containers and everything richc made for them.

    Example: richc rm --force web01
    """
    from richc import lifecycle

    for name in names:
        _bind(name)
        lifecycle.remove(context(ctx), name, force=force)
        _log.info("removed %s", name)


def _list(ctx: typer.Context, output: Format) -> None:
    from richc.info import list_all

    items = list_all(context(ctx), brief=output is not Format.json)
    if output is Format.json:
        emit_json(items)
        return
    from richc.sizes import format_size

    def used(item: dict[str, Any]) -> tuple[str, str]:
        usage = item.get("usage") or {}
        memory, cpu = usage.get("memory_bytes"), usage.get("cpu_seconds")
        if item["state"] != "running":
            return "-", "-"
        return format_size(memory), ("-" if cpu is None else f"{cpu:.1f}s")

    emit_table(
        ["NAME", "STATE", "INIT", "RUNTIME", "PID", "MEM USAGE", "MEMORY", "CPU TIME", "SOURCE"],
        [
            [
                i["name"],
                i["state"],
                i["init"],
                i["runtime"],
                i["pid"],
                used(i)[0],
                format_size(i["limits"]["memory_bytes"]),
                used(i)[1],
                i["source"],
            ]
            for i in items
        ],
    )


@app.command("list")
def list_(ctx: typer.Context, output: FormatOpt = Format.table) -> None:
    """List containers.

    Example: richc list --format json
    """
    _list(ctx, output)


@app.command("ps", hidden=True)
def ps(ctx: typer.Context, output: FormatOpt = Format.table) -> None:
    """List containers (alias of list)."""
    _list(ctx, output)


@app.command()
def inspect(ctx: typer.Context, name: CompletedName, output: FormatOpt = Format.json) -> None:
    """Show everything richc knows about a container: JSON, or dotted keys as a table.

    Examples:
      richc inspect web01
      richc inspect web01 --format table
    """
    from richc.cli.output import flatten
    from richc.info import describe

    rctx = context(ctx)
    data = describe(rctx, rctx.store.get(name))
    if output is Format.json:
        emit_json(data)
    else:
        emit_table(["KEY", "VALUE"], flatten(data))


@app.command("exec")
def exec_(
    ctx: typer.Context,
    name: CompletedName,
    command: Annotated[list[str], typer.Argument(help="Command and arguments, after --.")],
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="K=V, repeatable.")] = None,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="User name or UID[:GID].")
    ] = None,
    cwd: Annotated[str | None, typer.Option("--cwd", "-w", help="Working directory.")] = None,
) -> int:
    """Run a command in a running container; exit with the command's own status.

    Exit status 125: richc could not run it; 126: not executable; 127: not found.

    Example: richc exec web01 -- ps
    """
    from richc import config as cfg
    from richc.execute import exec_in

    sys.stdout.flush()
    return exec_in(
        context(ctx),
        name,
        command,
        env=cfg.parse_key_values("--env", env or []),
        user=user,
        cwd=cwd,
    )
