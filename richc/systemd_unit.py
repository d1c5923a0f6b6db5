"""systemd units for containers: a template ``richc@.service`` plus one drop-in per container.

Why a template and drop-ins rather than one full unit per container: ``richc@NAME`` is the
name operators expect (as with ``systemd-nspawn@``), every container runs the same command
line, and only a handful of settings differ (restart policy, timeouts). Those live in
``richc@NAME.service.d/50-richc.conf``, which richc regenerates from the container's config;
an operator's ``systemctl edit richc@NAME`` drop-in (``override.conf``) sorts after it and
wins. ``richc.target`` groups the containers and is wanted by ``multi-user.target``.

Units go to ``ROOT/etc/systemd/system`` (:attr:`HostPaths.systemd_units`), so ``--root``
keeps tests away from ``/etc/systemd``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from richc import config as cfg
from richc.context import Context
from richc.paths import HostPaths

TEMPLATE_UNIT = "richc@.service"
TARGET_UNIT = "richc.target"
DROPIN_NAME = "50-richc.conf"

# Time for richc itself and the runtime around the init's own start or shutdown.
START_BASE_SECONDS = 30
STOP_MARGIN_SECONDS = 10
# systemd's rate limit for restarts: at most BURST starts within INTERVAL seconds.
START_LIMIT_INTERVAL = 300
START_LIMIT_BURST = 5
RESTART_SEC = 2


def instance_unit(name: str) -> str:
    return f"richc@{name}.service"


@dataclass(frozen=True)
class UnitFiles:
    """The files of one container's unit, each path with its text."""

    template: tuple[Path, str]
    target: tuple[Path, str]
    dropin: tuple[Path, str]

    def all(self) -> tuple[tuple[Path, str], ...]:
        return (self.template, self.target, self.dropin)


def richc_argv(paths: HostPaths, richc: Path | None = None) -> list[str]:
    """How the unit runs richc: the installed console script, and --root when not ``/``."""
    argv = [str(richc or richc_executable())]
    if paths.root != Path("/"):
        argv += ["--root", str(paths.root)]
    return argv


def exec_words(argv: list[str]) -> str:
    """*argv* as an ``ExecStart=`` command line: each word quoted where needed, ``%`` doubled
    (systemd would read ``%i``-style specifiers in a path otherwise)."""
    import shlex

    return " ".join(shlex.quote(word).replace("%", "%%") for word in argv)


def richc_executable() -> Path:
    # The console script next to the running interpreter (a venv or /usr/bin), so the unit
    # runs the same richc that installed it.
    beside = Path(sys.executable).with_name("richc")
    if beside.exists():
        return beside
    found = shutil.which("richc")
    return Path(found) if found else Path("/usr/bin/richc")


def hook_seconds(
    config: cfg.ContainerConfig, paths: HostPaths, init: str, stages: tuple[str, ...]
) -> int:
    """The longest the hooks of *stages* may take: the timeouts of every hook that runs there
    (built-in, hooks.d, OCI hook files, the container's own), as the hooks runner resolves
    them, plus the runner's own waits (poststart hooks first wait for the init to boot)."""
    from richc.context import Context
    from richc.hookrun import stages as hook_stages
    from richc.hookrun.model import Stage
    from richc.state import State

    state = State(name=config.name, status="created", init=init)
    total = 0.0
    for stage in stages:
        hooks = hook_stages.hooks_for(Context(paths), config, state, Stage(stage))
        total += sum(hook.timeout for hook in hooks)
        if hooks and stage == "poststart":
            total += hook_stages.READY_TIMEOUT
        if hooks and stage == "poststop":
            total += hook_stages.POSTSTOP_MARGIN
    return int(-(-total // 1))  # round up: systemd takes whole seconds here


@dataclass(frozen=True)
class UnitSettings:
    """The per-container values of the drop-in, with the reasons written next to them."""

    restart: str
    start_timeout: int
    start_timeout_why: str
    stop_timeout: int
    stop_timeout_why: str
    start_limit_interval: int
    start_limit_burst: int


def settings_for(config: cfg.ContainerConfig, paths: HostPaths, init: str = "") -> UnitSettings:
    init = init or config.init.value
    start_hooks = hook_seconds(config, paths, init, ("prestart", "poststart"))
    stop_hooks = hook_seconds(config, paths, init, ("prestop", "poststop"))
    # `restart: always` never gives up (as richc's own supervisor); systemd's rate limit is
    # switched off with an interval of 0.
    always = config.restart is cfg.RestartPolicy.always
    return UnitSettings(
        restart=config.restart.value,
        start_timeout=START_BASE_SECONDS + start_hooks,
        start_timeout_why=(
            f"{START_BASE_SECONDS} s for richc and the init + {start_hooks} s"
            " of prestart/poststart hooks"
        ),
        stop_timeout=config.stop_timeout + stop_hooks + STOP_MARGIN_SECONDS,
        stop_timeout_why=(
            f"stop_timeout {config.stop_timeout} s + {stop_hooks} s of prestop/poststop hooks"
            f" + {STOP_MARGIN_SECONDS} s for richc and the runtime"
        ),
        start_limit_interval=0 if always else START_LIMIT_INTERVAL,
        start_limit_burst=START_LIMIT_BURST,
    )


def render_files(
    config: cfg.ContainerConfig,
    paths: HostPaths,
    *,
    init: str,
    runtime: str,
    richc: Path | None = None,
) -> UnitFiles:
    from richc.templating import render

    units = paths.systemd_units
    settings = settings_for(config, paths, init)
    template = render(
        "systemd/richc@.service.j2",
        richc_command=exec_words(richc_argv(paths, richc)),
        dropin_name=DROPIN_NAME,
    )
    target = render("systemd/richc.target.j2")
    dropin = render(
        "systemd/dropin.conf.j2",
        name=config.name,
        init=init or config.init.value,
        runtime=runtime or config.runtime.value,
        restart_policy=config.restart.value,
        restart_sec=RESTART_SEC,
        **settings.__dict__,
    )
    return UnitFiles(
        template=(units / TEMPLATE_UNIT, template),
        target=(units / TARGET_UNIT, target),
        dropin=(units / f"{instance_unit(config.name)}.d" / DROPIN_NAME, dropin),
    )


def write_files(files: UnitFiles) -> list[Path]:
    from richc.store import write_atomic

    written = []
    for path, text in files.all():
        write_atomic(path, text)
        written.append(path)
    return written


def remove_files(paths: HostPaths, name: str) -> list[Path]:
    """Remove the container's drop-in; the template and target too once no drop-in is left."""
    units = paths.systemd_units
    removed = []
    dropin_dir = units / f"{instance_unit(name)}.d"
    dropin = dropin_dir / DROPIN_NAME
    if dropin.exists():
        dropin.unlink()
        removed.append(dropin)
    with contextlib.suppress(OSError):
        dropin_dir.rmdir()  # only if the operator left no drop-in of their own
    # Other containers' drop-in directories; "?*" leaves out the template's own (richc@.service.d).
    others = [p for p in units.glob("richc@?*.service.d") if p.is_dir()] if units.is_dir() else []
    if not others:
        for shared in (units / TEMPLATE_UNIT, units / TARGET_UNIT):
            if shared.exists():
                shared.unlink()
                removed.append(shared)
    return removed


def is_enabled(paths: HostPaths, name: str) -> bool:
    """True if ``richc.target`` wants the container's unit (what ``--enable`` links)."""
    return (paths.systemd_units / f"{TARGET_UNIT}.wants" / instance_unit(name)).is_symlink()


def systemd_running() -> bool:
    """True if systemd is the host's service manager (sd_booted(3)'s test)."""
    return os.path.isdir("/run/systemd/system")


def pid1_name() -> str:
    try:
        return Path("/proc/1/comm").read_text().strip()
    except OSError:
        return "?"


@dataclass(frozen=True)
class InstallResult:
    unit: str
    written: list[Path]
    enabled: bool
    started: bool
    notes: list[str]


def _offline(paths: HostPaths) -> str | None:
    """Why systemctl cannot act on the running manager here, or None when it can."""
    if not systemd_running():
        return f"systemd is not running on this host (PID 1 is {pid1_name()})"
    if paths.root != Path("/"):
        return f"the units are under --root {paths.root}, which the running systemd does not read"
    return None


def _systemctl(*args: str, root: Path | None = None) -> None:
    from richc.run import run

    argv = ["systemctl", *([f"--root={root}"] if root is not None else []), *args]
    run(argv, hint="see `journalctl -xe` and `systemctl status` for systemd's account")


def install(ctx: Context, name: str, *, enable: bool = False, now: bool = False) -> InstallResult:
    """Write the container's unit files; enable and start them when asked and possible."""
    from richc.errors import HostUnsupported
    from richc.state import UnitRecord
    from richc.state import now as timestamp

    cdir = ctx.store.get(name)
    unit = instance_unit(name)
    with cdir.lock():
        state = cdir.load_state()
        config = cdir.load_config()
        files = render_files(config, ctx.paths, init=state.init, runtime=state.runtime)
        written = write_files(files)
        offline = _offline(ctx.paths)
        notes = []
        if offline:
            notes.append(f"{offline}: wrote the unit files only")
            if enable:
                # Enabling is only symlinks; systemctl --root makes them without a manager,
                # so the container starts at the next boot under systemd.
                _systemctl("enable", TARGET_UNIT, unit, root=ctx.paths.root)
                notes.append(f"enabled {unit} offline: it starts when systemd boots this root")
        else:
            _systemctl("daemon-reload")
            if enable:
                _systemctl("enable", TARGET_UNIT, unit)
        enabled = is_enabled(ctx.paths, name)
        state.unit = UnitRecord(unit, tuple(str(p) for p in written), enabled, timestamp())
        cdir.save_state(state)
    started = False
    if now:
        if offline:
            raise HostUnsupported(
                f"cannot start {unit} now: {offline}",
                hint=f"the files are written; without systemd, run `richc start --foreground"
                f" {name}` (it supervises and restarts by the container's policy)",
            )
        # Outside the lock: the unit's own `richc start --foreground` takes it.
        _systemctl("start", unit)
        started = True
    return InstallResult(unit, written, enabled, started, notes)


def remove(ctx: Context, name: str) -> list[Path]:
    """Stop and disable the container's unit where systemd runs, and remove its files."""
    cdir = ctx.store.get(name)
    unit = instance_unit(name)
    if not _offline(ctx.paths) and (ctx.paths.systemd_units / TEMPLATE_UNIT).exists():
        _systemctl("stop", unit)  # outside the lock: its ExecStop (`richc stop`) takes it
    with cdir.lock():
        removed = uninstall(ctx.paths, name)
        state = cdir.load_state()
        state.unit = None
        cdir.save_state(state)
    return removed


def uninstall(paths: HostPaths, name: str) -> list[Path]:
    """Disable the container's unit and remove its files; `richc rm` calls this too."""
    unit = instance_unit(name)
    offline = _offline(paths)
    if (paths.systemd_units / TEMPLATE_UNIT).exists():
        _systemctl("disable", unit, root=paths.root if offline else None)
    removed = remove_files(paths, name)
    if not (paths.systemd_units / TEMPLATE_UNIT).exists():
        _remove_target_links(paths)
    if not offline:
        _systemctl("daemon-reload")
    return removed


def _remove_target_links(paths: HostPaths) -> None:
    units = paths.systemd_units
    link = units / "multi-user.target.wants" / TARGET_UNIT
    if link.is_symlink():
        link.unlink()
    for wants in (units / f"{TARGET_UNIT}.wants", link.parent):
        with contextlib.suppress(OSError):
            wants.rmdir()  # only when empty: other units' links stay


def show(ctx: Context, name: str) -> str:
    """The unit as systemd would see it: the template, then the drop-in (``systemctl cat``)."""
    cdir = ctx.store.get(name)
    state = cdir.load_state()
    files = render_files(cdir.load_config(), ctx.paths, init=state.init, runtime=state.runtime)
    return "\n".join(f"# {path}\n{text}" for path, text in (files.template, files.dropin))
