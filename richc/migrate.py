"""`richc migrate sync|cutover|report`: the rest of a migration after `create`.

A live host (``--from ssh://...``) is copied once at create; ``sync`` brings the stopped
container's rootfs up to date with the host again (rsync, incremental), ``cutover`` does a
last sync and starts it. After each sync every fix-up create applied is applied again,
since rsync puts the host's own files back. ``report`` says, after the first boot, what an
operator should look at: failed units and why, what was masked, whether the network
identity was kept, which mounts were dropped.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from richc.context import Context
from richc.errors import Conflict, RichcError, UsageError
from richc.procs import live_pid
from richc.run import run

log = logging.getLogger("richc.migrate")

# Actions of the fix-ups that take something away the VM had.
MASKING = ("mask",)
DROPPING = ("comment-out", "drop")


def _live_source(ctx: Context, name: str) -> tuple[Any, Any, Any]:
    from richc.rootfs import sources

    cdir = ctx.store.get(name)
    config = cdir.load_config()
    source = sources.parse(config.source)
    if source.kind is not sources.Kind.ssh:
        raise UsageError(
            f"{name} was not created from a live host (its source is {config.source})",
            hint="`richc migrate sync` repeats the copy of `create --from ssh://USER@HOST`",
        )
    return cdir, config, source


def sync(ctx: Context, name: str) -> dict[str, Any]:
    """Bring the stopped container's rootfs up to date with its live host, then apply the
    fix-ups again. Refused while it runs: rsync would swap files under its services."""
    from richc.rootfs import importer, plan_edits
    from richc.rootfs.model import Change

    cdir, config, source = _live_source(ctx, name)
    with cdir.lock():
        state = cdir.load_state()
        if live_pid(state.init_run) is not None:
            raise Conflict(
                f"{name} is running", hint=f"stop it first, or `richc migrate cutover {name}`"
            )
        from richc import hostres

        for resource in ("disk", "overlay"):  # a loop image is unmounted after a reboot
            hostres.get(resource).prepare(ctx, cdir, config, state)
        started = time.monotonic()
        from richc.config import Init
        from richc.hostres.security import host_writes

        with host_writes(cdir, state):  # a shifted tree takes the host's own ids meanwhile
            steps: list[Change] = importer.from_host(source.value, cdir.rootfs, config)
            edits = plan_edits(cdir.rootfs, config, Init(state.init), fresh=False)
            for edit in edits:
                edit.run(cdir.rootfs)
        changes = steps + [edit.change for edit in edits]
        state.applied = [c.to_dict() for c in changes]
        state.synced_at = _now()
        cdir.save_state(state)
    return {
        "name": name,
        "source": str(source),
        "seconds": round(time.monotonic() - started, 2),
        "changes": [c.to_dict() for c in changes],
    }


def _now() -> str:
    from richc.state import now

    return now()


def cutover(ctx: Context, name: str, *, timeout: float | None = None) -> dict[str, Any]:
    """Stop the container if it runs, sync a last time, start it."""
    from richc import lifecycle

    _live_source(ctx, name)
    cdir = ctx.store.get(name)
    if live_pid(cdir.load_state().init_run) is not None:
        lifecycle.stop(ctx, name, timeout=timeout)
    result = sync(ctx, name)
    state = lifecycle.start(ctx, name)
    result["pid"] = state.pid
    return result


def _in_container(pid: int, argv: list[str]) -> str:
    """Run *argv* in the container of init *pid* (all its namespaces, its root); stdout."""
    proc = run(
        ["nsenter", "--target", str(pid), "--all", "--root", "--wd", "--", *argv], check=False
    )
    return proc.stdout


def failed_units(pid: int) -> list[dict[str, str]]:
    """systemd's failed units inside, each with the last lines of its journal (why)."""
    out = []
    listing = _in_container(pid, ["systemctl", "--failed", "--plain", "--no-legend", "--no-pager"])
    for line in listing.splitlines():
        fields = line.split()
        if not fields:
            continue
        unit = fields[0]
        why = _in_container(
            pid, ["journalctl", "-u", unit, "-n", "5", "--no-pager", "-q", "-o", "cat"]
        )
        out.append({"unit": unit, "why": why.strip().splitlines()[-1] if why.strip() else ""})
    return out


def report(ctx: Context, name: str) -> dict[str, Any]:
    """What changed between the VM and the container, and what to check."""
    cdir = ctx.store.get(name)
    config = cdir.load_config()
    state = cdir.load_state()
    pid = live_pid(state.init_run)
    booted = state.started_at is not None
    failed: list[dict[str, str]] | None = None
    system_state = None
    if pid is not None and state.init == "systemd":
        system_state = _in_container(pid, ["systemctl", "is-system-running"]).strip() or None
        failed = failed_units(pid)
    masked = [c for c in state.applied if c.get("action") in MASKING]
    dropped = [c for c in state.applied if c.get("action") in DROPPING]
    network = _network_identity(cdir.rootfs, state)
    checks: list[str] = []
    if not booted:
        checks.append(f"start it first (`richc start {name}`): the report reads the booted system")
    if failed:
        units = ", ".join(f["unit"] for f in failed)
        checks.append(f"failed units: {units}: see `richc exec {name} -- journalctl -u UNIT`")
    if network["kept"] is False:
        checks.append(f"the network identity changed: {network['detail']}; update DNS and clients")
    if dropped:
        checks.append(
            f"{len(dropped)} mount(s) or fstab line(s) were dropped: attach what the service "
            "still needs with a hook (hooks/examples/bind-host-dir)"
        )
    if masked:
        checks.append(
            f"{len(masked)} service(s) were masked as the host's job (time, hardware, guest "
            "agents): check nothing the application needs is among them"
        )
    return {
        "name": name,
        "source": config.source,
        "init": state.init,
        "runtime": state.runtime,
        "created_at": state.created_at,
        "started_at": state.started_at,
        "running": pid is not None,
        "system_state": system_state,
        "failed_units": failed,
        "masked": [{"path": c["path"], "reason": c["reason"]} for c in masked],
        "dropped": [{"path": c["path"], "reason": c["reason"]} for c in dropped],
        "network": network,
        "checks": checks,
    }


def _network_identity(rootfs: Path, state: Any) -> dict[str, Any]:
    """Whether the container has the address the VM's own network config names."""
    import yaml

    from netctl.guestcfg import read_static

    try:
        guest = read_static(rootfs, load_yaml=yaml.safe_load).static
    except (OSError, RichcError, ValueError):
        guest = []
    vm = str(guest[0].address) if guest else None
    nics = state.net.nics if state.net is not None else ()
    have = nics[0].address.split("/")[0] if nics and nics[0].address else None
    if vm is None:
        detail = f"the VM configured no static address; the container has {have or 'none'}"
        return {"vm_address": None, "address": have, "kept": None, "detail": detail}
    if have == vm:
        return {"vm_address": vm, "address": have, "kept": True, "detail": f"{vm} kept"}
    detail = f"the VM had {vm}, the container has {have or 'no address'}"
    if not nics:
        detail += " (created without a NIC: --net NETWORK --keep-ip keeps it)"
    return {"vm_address": vm, "address": have, "kept": False, "detail": detail}
