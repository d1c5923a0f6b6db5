"""What `richc hooks list`, `validate` and `run` report, as data (the CLI only formats it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from richc.context import Context
from richc.errors import UsageError
from richc.hookrun import ocihooks, safety, sources
from richc.hookrun.model import Hook, Source, Stage
from richc.hookrun.runner import StageRun


def parse_stage(value: str) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        raise UsageError(
            f"unknown hook stage {value!r}", hint=f"stages: {', '.join(s.value for s in Stage)}"
        ) from None


def _row(stage: Stage, hook: Hook, note: str = "", runs: bool = True) -> dict[str, Any]:
    return {
        "stage": stage.value,
        "source": hook.source.value,
        "hook": hook.name,
        "path": str(hook.path),
        "args": list(hook.argv[1:]),
        "timeout": hook.timeout,
        "on_failure": hook.on_failure,
        "origin": str(hook.origin) if hook.origin else None,
        "runs": runs,
        "note": hook.problem or note,
    }


def listing(ctx: Context, name: str | None = None) -> list[dict[str, Any]]:
    """Per stage, in running order, every hook; with *name*, exactly what would run for it.

    Without a container, OCI hooks are shown with their conditions (they may or may not
    match a given container) and skipped files with the reason.
    """
    rows: list[dict[str, Any]] = []
    if name is not None:
        from richc.hookrun import stages

        cdir = ctx.store.get(name)
        config, state = cdir.load_config(), cdir.load_state()
        for stage in Stage:
            rows += [_row(stage, h) for h in stages.hooks_for(ctx, config, state, stage)]
        return rows
    parsed: list[ocihooks.OciHookFile | Hook] = []
    for file in sources.oci_files(ctx.paths):
        try:
            parsed.append(ocihooks.load(file))
        except ocihooks.OciHookError as exc:
            parsed.append(Hook(file.stem, Source.oci, file, (str(file),), problem=exc.message))
    for stage in Stage:
        for directory, source in (
            (sources.builtin_dir() / stage.value, Source.builtin),
            (ctx.paths.hooks_d / stage.value, Source.hooks_d),
        ):
            hooks, skipped = sources.scan_dir(directory, source)
            rows += [_row(stage, h) for h in hooks]
            rows += [
                _row(stage, Hook(s.path.name, source, s.path, (str(s.path),)), s.reason, False)
                for s in skipped
            ]
        for item in parsed:
            if isinstance(item, Hook):
                rows.append(_row(stage, item, runs=False))
            elif stage in item.richc_stages():
                oci_stages = [s for s in item.stages if ocihooks.STAGE_MAP[s] is stage]
                note = f"when {item.when.describe()}; OCI stage {', '.join(oci_stages)}"
                rows.append(_row(stage, item.hook(), note))
    return rows


@dataclass(frozen=True)
class Finding:
    path: Path
    level: str  # "ok", "warning" or "error"
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "level": self.level, "message": self.message}


def _check_executable(path: Path) -> str | None:
    try:
        safety.check(path)
    except safety.UnsafeHook as exc:
        return f"{exc.message}; {exc.hint}" if exc.hint else exc.message
    if not os.access(path, os.X_OK):
        return f"{path} is not executable; fix it with `chmod +x {path}`"
    return None


def validate(ctx: Context) -> list[Finding]:
    """Check every file under hooks.d (and the built-in hooks): schema, mode, ownership."""
    findings: list[Finding] = []
    hooks_d = ctx.paths.hooks_d
    if not hooks_d.is_dir():
        return [Finding(hooks_d, "ok", "no hooks.d directory: no operator hooks")]
    stage_names = {s.value for s in Stage}
    for entry in sorted(hooks_d.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name not in stage_names:
            findings.append(
                Finding(entry, "warning", f"not a hook stage ({', '.join(stage_names)}); ignored")
            )
        elif entry.is_file() and entry.suffix != ".json":
            findings.append(Finding(entry, "warning", "not a *.json hook file; ignored"))
        elif entry.is_file():
            findings.append(_validate_oci(entry))
    for stage in Stage:
        for directory in (sources.builtin_dir() / stage.value, hooks_d / stage.value):
            findings += _validate_dir(directory)
    return findings


def _validate_dir(directory: Path) -> list[Finding]:
    findings: list[Finding] = []
    if not directory.is_dir():
        return findings
    for entry in sorted(directory.iterdir()):
        if sources.ignored_name(entry.name):
            continue
        if not entry.is_file():
            findings.append(Finding(entry, "warning", "not a regular file; ignored"))
        elif not os.access(entry, os.X_OK):
            findings.append(Finding(entry, "warning", "not executable: skipped (disabled)"))
        else:
            problem = _check_executable(entry)
            findings.append(
                Finding(entry, "error", problem) if problem else Finding(entry, "ok", "ok")
            )
    return findings


def _validate_oci(file: Path) -> Finding:
    try:
        safety.check(file)  # whoever can edit the JSON chooses what runs as root
        parsed = ocihooks.load(file)
    except (ocihooks.OciHookError, safety.UnsafeHook) as exc:
        return Finding(file, "error", f"{exc.message}; {exc.hint}" if exc.hint else exc.message)
    problem = _check_executable(parsed.path)
    if problem:
        return Finding(file, "error", f"hook.path: {problem}")
    stages = ", ".join(f"{s}->{ocihooks.STAGE_MAP[s].value}" for s in parsed.stages)
    return Finding(file, "ok", f"ok: runs {parsed.path} at {stages} when {parsed.when.describe()}")


def run_by_hand(ctx: Context, name: str, stage: Stage) -> StageRun:
    """`richc hooks run NAME STAGE`: the stage's hooks, now, as the lifecycle would run them.

    No readiness wait, no failure policy (nothing is started or stopped) and no poststop
    bookkeeping: this is for debugging a hook.
    """
    from richc.hookrun import stages
    from richc.hookrun.runner import run_hooks
    from richc.runtime import runtime_for

    cdir = ctx.store.get(name)
    config, state = cdir.load_config(), cdir.load_state()
    status = runtime_for(state).status(cdir) if state.runtime else None
    pid = status.pid if status and status.running else None
    hooks = stages.hooks_for(ctx, config, state, stage)
    target = stages.target(ctx, cdir, config, state, stage, pid)
    outcome = StageRun(stage)
    # Every hook runs, even after a failure: the point is to see them all.
    for hook in hooks:
        outcome.results += run_hooks([hook], target).results
    return outcome
