"""``richc doctor``: what this host offers, and what richc will use and why."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from richc.cli.app import app, context
from richc.cli.output import Format, FormatOpt, emit_json, emit_table
from richc.errors import HostUnsupported
from richc.paths import HostPaths

if TYPE_CHECKING:
    from richc.probe.decide import QuotaSelection


def _host_path(path: Path) -> str:
    """*path* with symlinks resolved as far as it exists, so mountinfo prefixes match."""
    missing: list[str] = []
    while not path.exists() and path != path.parent:
        missing.insert(0, path.name)
        path = path.parent
    return os.path.join(os.path.realpath(path), *missing)


def _live_quota(paths: HostPaths) -> QuotaSelection:
    """The backend `create --disk` (``--disk-backend auto``) would choose, by its own checks."""
    from quota.selection import explain
    from richc.probe.decide import QuotaBackend, QuotaSelection

    found = explain(paths.containers, registry=paths.quota_registry)
    tried = tuple(
        QuotaBackend(t.backend, t.ok, "create's check passes" if t.ok else t.reason)
        for t in found.tried
    )
    return QuotaSelection(_host_path(paths.containers), found.chosen, tried)


def _network_checks(paths: HostPaths) -> list[dict[str, object]]:
    """Managed networking on this host: forwarding, nftables (and other tools' forward
    drops), dnsmasq, pyroute2; live checks, so only for this machine, not a recorded tree."""
    import dataclasses

    from netctl.network import host_checks
    from richc.networks import table_for

    return [dataclasses.asdict(c) for c in host_checks(table_for(paths))]


def _isolation_checks(paths: HostPaths, host_root: Path) -> list[dict[str, object]]:
    """The secure defaults on this host (isolation.hostcheck): user namespaces, whether a
    rootfs in the store gets an idmapped mount or a one-time shift, seccomp, AppArmor."""
    from isolation.hostcheck import host_support

    store = paths.containers
    while not store.exists() and store != store.parent:
        store = store.parent
    found = host_support(store, host_root)
    checks = [
        ("user namespaces", bool(found.user_namespaces), found.user_namespaces.detail),
        (
            "rootfs ownership",
            True,
            f"{found.ownership.method.value} ({found.ownership.fstype}): {found.ownership.reason}",
        ),
        ("seccomp", bool(found.seccomp), found.seccomp.detail),
        ("apparmor", bool(found.apparmor), found.apparmor.reason),
        ("fresh /proc", bool(found.proc_visible), found.proc_visible.detail),
    ]
    return [{"name": name, "ok": ok, "detail": detail} for name, ok, detail in checks]


@app.command()
def doctor(
    ctx: typer.Context,
    output: FormatOpt = Format.table,
    host_root: Annotated[
        Path,
        typer.Option(
            "--host-root",
            envvar="RICHC_HOST_ROOT",
            help=(
                "Read /proc, /sys, /dev, /run and /boot below this directory instead of /, "
                "e.g. a tree recorded by tests/fixtures/hosts/record.py. The lxc bindings "
                "and runc/crun are still checked on this machine."
            ),
        ),
    ] = Path("/"),
) -> None:
    """Probe the kernel and host; say what richc will use and why.

    Checks the kernel version, namespaces, cgroup layout and controllers, overlayfs, FUSE,
    lxcfs, quota backends for the store, seccomp, AppArmor, user namespaces, the lxc
    bindings, runc/crun and systemd, and for managed networks IP forwarding, nftables,
    dnsmasq and pyroute2. Exits 1 when no runtime can run containers here.

    Examples:

      richc doctor

      richc doctor --format json
    """
    from richc.probe import HostReport, probe_host
    from richc.probe.kernel import has

    paths = context(ctx).paths
    host_root = host_root.resolve()
    quota = None
    if host_root == Path("/"):
        # Where create puts rootfs trees, which may be a mount of its own.
        store = _host_path(paths.containers)
        quota = _live_quota(paths)
    else:
        # The store as the probed host sees it (/var/lib/richc): its mountinfo knows nothing
        # of this machine's --root, and its filesystems cannot be checked live.
        store = "/" + str(paths.lib.relative_to(paths.root))
    report = HostReport.of(probe_host(host_root, store_path=store), quota)
    network = _network_checks(paths) if host_root == Path("/") else []
    isolation = _isolation_checks(paths, host_root)
    if output is Format.json:
        emit_json({**report.to_json(), "network": network, "isolation": isolation})
    else:
        rows = list(report.rows())
        for check in isolation:
            use = "yes" if check["ok"] else "no"
            rows.append((f"isolation: {check['name']}", str(check["detail"]), use, ""))
        for check in network:
            use = "yes" if check["ok"] else "no"
            hint = str(check["hint"] or "")
            rows.append((f"net: {check['name']}", str(check["detail"]), use, hint))
        emit_table(("CHECK", "VALUE", "USE", "WHY"), rows)
    if report.features.runtime is None:
        runtime = next(d for d in report.decisions if d.check == "runtime")
        hint = "install lxc and the python lxc bindings (pip install 'richc[lxc]')"
        if has(report.features.kernel, "runc"):
            hint += ", or runc"
        raise HostUnsupported(f"no container runtime works on this host: {runtime.why}", hint=hint)
