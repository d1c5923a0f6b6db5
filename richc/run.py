"""The one place richc spawns child processes.

Every child gets an explicit argv list, a rebuilt environment and /dev/null on stdin unless
the caller passes input. Failures become :class:`CommandFailed` with a message that tells
"not found", "killed by a signal" and "exited non-zero" apart.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from richc.errors import CommandFailed

log = logging.getLogger("richc.run")

# A PATH that finds the tools richc uses whatever the caller's environment holds.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every child starts from: PATH and locale, nothing inherited by accident."""
    env = {"PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    for key in ("TERM", "HOME"):
        if key in os.environ:
            env[key] = os.environ[key]
    if extra:
        env.update(extra)
    return env


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    capture: bool = True,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    hint: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run *argv* to completion and return its result; raise CommandFailed on failure.

    With ``capture`` (the default) stdout and stderr are returned as text. ``stdout`` and
    ``stderr`` override capture for one stream (for example a log file descriptor).
    """
    args = [os.fspath(a) for a in argv]
    log.debug("+ %s", shlex.join(args))
    data = input.decode() if isinstance(input, bytes) else input
    try:
        proc = subprocess.run(
            args,
            input=data,
            stdin=None if data is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else (subprocess.PIPE if capture else None),
            stderr=stderr if stderr is not None else (subprocess.PIPE if capture else None),
            env=base_env() if env is None else dict(env),
            cwd=cwd,
            timeout=timeout,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandFailed(args, 127, str(exc), hint=hint) from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(args, 124, f"timed out after {timeout} s", hint=hint) from exc
    if check and proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, proc.stderr or "", hint=hint)
    return proc


def which(name: str) -> Path | None:
    """Find *name* on richc's PATH (not the caller's): the tools must be system ones."""
    for directory in SYSTEM_PATH.split(":"):
        candidate = Path(directory) / name
        if os.access(candidate, os.X_OK) and candidate.is_file():
            return candidate
    return None
