"""Run the hooks of one stage: stdin, environment, timeout, output capture and outcome."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from richc.hookrun import hooklog, safety
from richc.hookrun.model import Hook, Stage
from richc.run import base_env, run_session

OCI_VERSION = "1.0.2"
# A hook's output beyond this is cut (and says so): the log is for diagnosis, not data.
MAX_OUTPUT = 1 << 20


@dataclass(frozen=True)
class Target:
    """What the hooks of one stage are told about their container."""

    name: str
    stage: Stage
    rootfs: Path
    config_file: Path
    bundle: Path
    runtime: str
    root: Path
    log_dir: Path
    init: str = ""
    pid: int | None = None
    annotations: tuple[tuple[str, str], ...] = ()

    def state_json(self) -> str:
        """The OCI state document a hook reads on stdin."""
        state: dict[str, object] = {
            "ociVersion": OCI_VERSION,
            "id": self.name,
            "status": self.stage.oci_status(),
        }
        if self.pid is not None:
            state["pid"] = self.pid
        state["bundle"] = str(self.bundle)
        state["annotations"] = dict(self.annotations)
        return json.dumps(state)

    def env(self, hook: Hook) -> dict[str, str]:
        """The hook's environment: richc's base, the RICHC_* facts, then the hook's own."""
        env = base_env(
            {
                "RICHC_NAME": self.name,
                "RICHC_STAGE": self.stage.value,
                "RICHC_ROOTFS": str(self.rootfs),
                "RICHC_CONFIG": str(self.config_file),
                "RICHC_RUNTIME": self.runtime,
                "RICHC_ROOT": str(self.root),
                "RICHC_LOG_DIR": str(self.log_dir),
                "RICHC_INIT": self.init,
                "RICHC_HOOK": hook.label,
            }
        )
        if self.pid is not None:
            env["RICHC_PID"] = str(self.pid)
        env.update(hook.env)
        return env

    @property
    def log_file(self) -> Path:
        return self.log_dir / "hooks.log"


@dataclass
class Result:
    hook: Hook
    returncode: int | None  # None: it never ran (refused or broken)
    duration: float = 0.0
    timed_out: bool = False
    error: str = ""
    output: str = ""  # what it wrote to stdout and stderr (cut at MAX_OUTPUT)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def blocking_failure(self) -> bool:
        return not self.ok and self.hook.blocking

    def describe(self) -> str:
        if self.ok:
            return f"{self.hook.label} succeeded in {self.duration * 1000:.0f} ms"
        if self.error:
            return f"{self.hook.label} failed: {self.error}"
        code = self.returncode if self.returncode is not None else "?"
        if isinstance(code, int) and code < 0:
            return f"{self.hook.label} failed: killed by signal {-code}"
        return f"{self.hook.label} failed with exit status {code}"

    def to_dict(self) -> dict[str, object]:
        return {
            "hook": self.hook.label,
            "path": str(self.hook.path),
            "ok": self.ok,
            "returncode": self.returncode,
            "timed_out": self.timed_out,
            "error": self.error,
            "duration_ms": round(self.duration * 1000, 1),
            "on_failure": self.hook.on_failure,
        }


@dataclass
class StageRun:
    stage: Stage
    results: list[Result] = field(default_factory=list)

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    @property
    def blocking_failures(self) -> list[Result]:
        return [r for r in self.results if r.blocking_failure]


def run_hooks(hooks: Sequence[Hook], target: Target, *, journal: bool | None = None) -> StageRun:
    """Run *hooks* in order. At a blocking stage, the first blocking failure ends the run."""
    outcome = StageRun(target.stage)
    if not hooks:
        return outcome
    with hooklog.to_container_log(target.log_file, journal=journal):
        for hook in hooks:
            result = run_one(hook, target)
            outcome.results.append(result)
            if target.stage.blocks() and result.blocking_failure:
                skipped = hooks[len(outcome.results) :]
                if skipped:
                    hooklog.logger.warning(
                        "not running %s after that failure",
                        ", ".join(h.label for h in skipped),
                        extra=hooklog.tags(target.name, target.stage.value),
                    )
                break
    return outcome


def run_one(hook: Hook, target: Target) -> Result:
    tags = hooklog.tags(target.name, target.stage.value, hook.label)
    log = hooklog.logger
    if hook.problem:
        log.error("cannot run: %s", hook.problem, extra=tags)
        return Result(hook, None, error=hook.problem)
    try:
        safety.check(hook.path)
    except safety.UnsafeHook as exc:
        message = f"{exc.message}; {exc.hint}" if exc.hint else exc.message
        log.error("%s", message, extra=tags)
        return Result(hook, None, error=message)
    log.info("running %s", " ".join(hook.argv), extra=tags)
    started = time.monotonic()
    import tempfile  # ~2 ms to import; a start without hooks never gets here

    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as output:
        stdin.write(target.state_json().encode())
        stdin.seek(0)
        session = run_session(
            hook.argv,
            executable=hook.path,
            env=target.env(hook),
            stdin=stdin.fileno(),
            output=output.fileno(),
            timeout=hook.timeout,
        )
        duration = time.monotonic() - started
        text = _log_output(output.fileno(), tags)
    result = Result(
        hook,
        session.returncode,
        duration,
        timed_out=session.timed_out,
        error=session.error,
        output=text,
    )
    if session.timed_out:
        result.error = f"timed out after {hook.timeout:g} s; its process group was killed"
    level = logging.INFO if result.ok else logging.WARNING
    log.log(level, "%s", result.describe().removeprefix(hook.label + " "), extra=tags)
    return result


def _log_output(fd: int, tags: dict[str, object]) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while len(data) <= MAX_OUTPUT:
        chunk = os.read(fd, MAX_OUTPUT + 1 - len(data))
        if not chunk:
            break
        data += chunk
    text = data[:MAX_OUTPUT].decode(errors="replace")
    for line in text.splitlines():
        hooklog.logger.info("| %s", line, extra=tags)
    if len(data) > MAX_OUTPUT:
        hooklog.logger.info("| [output cut at %d bytes]", MAX_OUTPUT, extra=tags)
    return text
