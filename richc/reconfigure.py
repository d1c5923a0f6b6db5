"""`richc set NAME KEY=VALUE...`: change limits, env and disk size, live where it runs.

All or nothing: every key is parsed and the whole new config validated (against the host
too) before anything changes. On a running container the cgroup files are written at
once, each write paired with the value it replaces, so a write that fails midway undoes
the ones before it. Then the env files inside the rootfs are rewritten and config.yaml
saved, so the next start renders the same limits. A stopped container only has its config
(and env files) rewritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from richc import config as cfg
from richc import livewrites
from richc.context import Context
from richc.errors import ConfigError, RichcError, UsageError
from richc.hostfacts import validate_for_host
from richc.state import State
from richc.store import ContainerDir

log = logging.getLogger("richc.reconfigure")

# `set` keys for limits; ``-`` and ``_`` are interchangeable (memory-swap, memory_swap).
LIMIT_SET_KEYS = tuple(sorted(cfg.LIMIT_KEYS - {"ulimits"}))
ULIMIT_PREFIX = "ulimit."
ENV_PREFIX = "env."
EXAMPLE = "richc set web01 memory=1G cpus=2 pids=500 env.APP_ENV=prod"


@dataclass(frozen=True)
class Request:
    """What one `richc set` asks for; a value of None removes the setting."""

    limits: dict[str, str | None] = field(default_factory=dict)
    ulimits: dict[str, str | None] = field(default_factory=dict)
    env: dict[str, str | None] = field(default_factory=dict)
    disk: int | None = None
    disk_inodes: int | None = None

    @property
    def touches_disk(self) -> bool:
        return self.disk is not None or self.disk_inodes is not None

    @property
    def touches_config(self) -> bool:
        return bool(self.limits or self.ulimits or self.env)


def known_keys() -> str:
    return ", ".join(
        [*LIMIT_SET_KEYS, "disk", "disk.inodes", f"{ULIMIT_PREFIX}NAME", f"{ENV_PREFIX}NAME"]
    )


def parse_request(items: Sequence[str]) -> Request:
    """Parse KEY=VALUE items; an empty VALUE removes a limit or an env variable."""
    if not items:
        raise UsageError("nothing to set", hint=EXAMPLE)
    request = Request()
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {item!r}", hint=EXAMPLE)
        if key.startswith(ENV_PREFIX):
            env_key = key[len(ENV_PREFIX) :]
            if not cfg.ENV_KEY_RE.match(env_key):
                raise ConfigError(key, value, "invalid environment variable name")
            request.env[env_key] = value
            continue
        norm = key.replace("-", "_")
        if norm.startswith(ULIMIT_PREFIX):
            request.ulimits[norm[len(ULIMIT_PREFIX) :]] = value or None
        elif norm in LIMIT_SET_KEYS:
            request.limits[norm] = value or None
        elif norm == "disk":
            if not value:
                raise ConfigError("disk", value, "a disk limit cannot be removed with set")
            from richc.sizes import parse_size

            request = dataclasses.replace(request, disk=parse_size("disk", value))
        elif norm == "disk.inodes":
            if not value:
                raise ConfigError(key, value, "an inode limit cannot be removed with set")
            from richc.sizes import parse_positive_int

            request = dataclasses.replace(
                request, disk_inodes=parse_positive_int("disk.inodes", value)
            )
        else:
            raise UsageError(f"unknown setting {key!r}", hint=f"settable: {known_keys()}")
    return request


def updated(config: cfg.ContainerConfig, request: Request) -> cfg.ContainerConfig:
    """*config* with *request* applied, validated as a whole (a ConfigError names the key)."""
    data = config.to_dict()
    limits: dict[str, Any] = dict(data.get("limits") or {})
    for key, value in request.limits.items():
        if value is None:
            limits.pop(key, None)
        else:
            limits[key] = value
    if request.ulimits:
        ulimits: dict[str, Any] = dict(limits.get("ulimits") or {})
        for name, value in request.ulimits.items():
            if value is None:
                ulimits.pop(name, None)
            else:
                ulimits[name] = value
        limits["ulimits"] = ulimits
    data["limits"] = limits
    env = dict(data.get("env") or {})
    for key, env_value in request.env.items():
        if env_value:
            env[key] = env_value
        else:
            env.pop(key, None)
    data["env"] = env
    return cfg.from_dict(data)


@dataclass
class Outcome:
    name: str
    running: bool
    messages: list[str] = field(default_factory=list)


def apply(ctx: Context, name: str, items: Sequence[str]) -> Outcome:
    """Validate everything, then change it: disk, live cgroup files, env files, config."""
    request = parse_request(items)
    cdir = ctx.store.get(name)
    # Validate before touching anything, the disk included.
    new_config = updated(cdir.load_config(), request)
    if new_config.limits != cdir.load_config().limits:
        validate_for_host(new_config.limits, ctx.paths.run)
    outcome = Outcome(name, running=False)
    old_disk = cdir.load_config().disk
    if request.touches_disk:
        outcome.messages.append(_set_disk(ctx, name, request.disk, request.disk_inodes))
    try:
        with cdir.lock():
            _apply_locked(ctx, cdir, request, outcome)
    except BaseException:
        if request.touches_disk and old_disk.size is not None:
            # The disk was resized first (it takes the lock itself); put it back.
            old_inodes = old_disk.inodes if request.disk_inodes is not None else None
            with contextlib.suppress(RichcError):
                _set_disk(ctx, name, old_disk.size, old_inodes)
        raise
    return outcome


def _set_disk(ctx: Context, name: str, size: int | None, inodes: int | None) -> str:
    from richc.hostres import disk

    set_size: Callable[..., dict[str, Any]] | None = getattr(disk, "set_size", None)
    if set_size is None:
        raise UsageError("disk= is not supported by this richc", hint="see `richc quota --help`")
    info = set_size(ctx, name, size, inodes)
    files = info.get("limit_inodes")
    shown = f"{info.get('limit_bytes')} bytes" + (f", {files} inodes" if files else "")
    return f"disk limit of {name} is now {shown} ({info.get('backend')})"


def _apply_locked(ctx: Context, cdir: ContainerDir, request: Request, outcome: Outcome) -> None:
    from richc.procs import live_pid

    if not request.touches_config:
        return
    old = cdir.load_config()  # again, under the lock: the disk step or another set may have run
    new = updated(old, request)
    state = cdir.load_state()
    pid = live_pid(state.init_run)
    outcome.running = pid is not None
    undo: Callable[[], None] | None = None
    if pid is not None and new.limits != old.limits:
        undo = _apply_live(ctx, cdir, state, pid, old.limits, new.limits)
    try:
        if new.env != old.env:
            from richc import hostres
            from richc.rootfs.identity import render_env

            # After a host reboot a stopped container's loop image or overlay is not
            # mounted: writing the env files then would land under the mount point.
            for resource in ("disk", "overlay"):
                hostres.get(resource).prepare(ctx, cdir, old, state)
            render_env(new, cdir.rootfs)
        cdir.save_config(new)
    except BaseException:
        if undo is not None:
            undo()
        if new.env != old.env:
            with contextlib.suppress(Exception):
                from richc.rootfs.identity import render_env

                render_env(old, cdir.rootfs)
        raise
    _rerender(ctx, cdir, new, state)
    outcome.messages.extend(_describe(old, new, live=pid is not None))


def _rerender(ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: Any) -> None:
    """Bring the runtime's config file in step with config.yaml.

    LXC reads it again on every attach, so ``richc exec`` would otherwise still pass an
    env variable that `set env.K=` removed. Start re-renders anyway, so a failure here
    only costs that, and is logged rather than undoing the change.
    """
    from richc.lifecycle import make_spec
    from richc.runtime import runtime_for

    if not state.runtime or not state.init:
        return
    try:
        runtime_for(state).render(make_spec(ctx, cdir, config, state), cdir)
    except (RichcError, OSError) as exc:
        log.warning("warning: %s: the runtime config is re-rendered at the next start", exc)


def _apply_live(
    ctx: Context,
    cdir: ContainerDir,
    state: State,
    pid: int,
    old: cfg.Limits,
    new: cfg.Limits,
) -> Callable[[], None]:
    """Write the changed cgroup files of the running container; return the undo."""
    from richc.hostfacts import host_facts
    from richc.stats import cgroup_of

    facts = host_facts(ctx.paths.run)
    group = cgroup_of(ctx, cdir, state, pid)
    new = dataclasses.replace(new, **_resolved(new))
    old = dataclasses.replace(old, **_resolved(old))
    writes = livewrites.plan_writes(
        old,
        new,
        facts.cgroup_version,
        group.read,
        io_weight_file=facts.io_weight_file,
    )
    livewrites.apply_writes(writes, group.write)

    def undo() -> None:
        reverse = [livewrites.Write(w.filename, w.undo, w.value) for w in reversed(writes)]
        with contextlib.suppress(RichcError):
            livewrites.apply_writes(reverse, group.write)

    return undo


def _resolved(limits: cfg.Limits) -> dict[str, Any]:
    from richc.hostfacts import resolve_devices

    resolved = resolve_devices(limits)
    return {key: getattr(resolved, key) for key in cfg.DEVICE_LIMIT_KEYS}


def _describe(old: cfg.ContainerConfig, new: cfg.ContainerConfig, *, live: bool) -> list[str]:
    lines: list[str] = []
    before, after = old.limits.to_dict(), new.limits.to_dict()
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        when = "now" if live and key != "ulimits" else "at the next start"
        shown = after.get(key, "unlimited")
        lines.append(f"{new.name}: {key} = {shown} (applies {when})")
    old_env, new_env = old.env_dict, new.env_dict
    for key in sorted(set(old_env) | set(new_env)):
        if old_env.get(key) != new_env.get(key):
            shown_env = f"{key}={new_env[key]}" if key in new_env else f"{key} removed"
            lines.append(f"{new.name}: env {shown_env} (new sessions and the next start)")
    return lines
