"""The one place richc spawns child processes.

Every child gets an explicit argv list, a rebuilt environment and /dev/null on stdin unless
the caller passes input. Failures become :class:`CommandFailed` with a message that tells
"not found", "killed by a signal" and "exited non-zero" apart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shlex
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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
    stdin: int | None = None,
    hint: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run *argv* to completion and return its result; raise CommandFailed on failure.

    With ``capture`` (the default) stdout and stderr are returned as text. ``stdout`` and
    ``stderr`` override capture for one stream (for example a log file descriptor);
    ``stdin`` gives the child a descriptor instead of /dev/null (``richc exec`` passes 0).
    """
    args = [os.fspath(a) for a in argv]
    log.debug("+ %s", shlex.join(args))
    data = input.decode() if isinstance(input, bytes) else input
    try:
        proc = subprocess.run(
            args,
            input=data,
            stdin=stdin if stdin is not None or data is not None else subprocess.DEVNULL,
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


def spawn_detached(
    argv: Sequence[str | os.PathLike[str]],
    *,
    pass_fds: Sequence[int] = (),
    output: int | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start *argv* in a new session without waiting for it; return its pid.

    For helpers that outlive richc (the runc runtime's console keeper): stdin is /dev/null,
    stdout and stderr go to *output* (a log file descriptor) or /dev/null, and only
    *pass_fds* are inherited.
    """
    args = [os.fspath(a) for a in argv]
    log.debug("+ %s &", shlex.join(args))
    sink = subprocess.DEVNULL if output is None else output
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=base_env() if env is None else dict(env),
            cwd="/",
            start_new_session=True,
            close_fds=True,
            pass_fds=tuple(pass_fds),
        )
    except OSError as exc:
        raise CommandFailed(args, 127, str(exc)) from exc
    return proc.pid


def which(name: str) -> Path | None:
    """Find *name* on richc's PATH (not the caller's): the tools must be system ones."""
    for directory in SYSTEM_PATH.split(":"):
        candidate = Path(directory) / name
        if os.access(candidate, os.X_OK) and candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class SessionResult:
    """How a child run by :func:`run_session` ended.

    ``returncode`` follows subprocess: negative for a death by signal; 127 when the file was
    not found and 126 when it could not be executed (``error`` then says why).
    """

    returncode: int
    timed_out: bool = False
    error: str = ""


def run_session(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str],
    stdin: int,
    output: int,
    timeout: float,
    executable: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] = "/",
    kill_group_on_failure: bool = True,
) -> SessionResult:
    """Run *argv* as the leader of a new session and process group, under a timeout.

    ``stdin`` and ``output`` are file descriptors (stdout and stderr both go to *output*,
    so their lines stay in order). A file rather than a pipe on both ends means a
    grandchild left in the background can never make richc wait for an end of file.

    On timeout the whole process group is killed with SIGKILL, so a hook's children die
    with it. With ``kill_group_on_failure`` the group is also killed when the leader fails,
    so a failed hook leaves nothing half-started behind. A descendant that left the group
    (``setsid``, a daemon) is found by the cookie it inherits in its environment
    (:data:`COOKIE_VAR`) and killed too. ``executable`` runs a file other than ``argv[0]``
    (an OCI hook's ``path`` with its own ``args``).
    """
    args = [os.fspath(a) for a in argv]
    import secrets  # hmac and random: only hook runs need a cookie

    cookie = secrets.token_hex(8)
    env = {**env, COOKIE_VAR: cookie}
    log.debug("+ %s", shlex.join(args))
    try:
        proc = subprocess.Popen(
            args,
            executable=os.fspath(executable) if executable is not None else None,
            stdin=stdin,
            stdout=output,
            stderr=output,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError as exc:
        return SessionResult(127, error=f"not found: {exc.strerror}")
    except PermissionError as exc:
        return SessionResult(126, error=f"cannot execute: {exc.strerror}")
    except OSError as exc:  # ENOEXEC: no #! line, wrong architecture
        return SessionResult(126, error=f"cannot execute: {exc.strerror}")
    try:
        code = _wait(proc, timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.wait()
        _kill_cookie(cookie)
        return SessionResult(
            -signal.SIGKILL, timed_out=True, error=f"timed out after {timeout:g} s"
        )
    if code != 0 and kill_group_on_failure:
        _kill_group(proc.pid)
        _kill_cookie(cookie)
    return SessionResult(code)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for *proc* up to *timeout* s; raise TimeoutExpired.

    Popen.wait(timeout) polls with growing sleeps, adding up to milliseconds per child; a
    pidfd (Linux 5.3) wakes us the moment the child exits. Older kernels poll.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return proc.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(pidfd)
    return proc.wait()


# Killing a process group misses a descendant that made a session of its own. Like a CI
# server's process-tree killer, mark every child's environment with a cookie that its
# descendants inherit, and look for it in /proc when the whole tree must go. A process that
# rebuilt its environment from nothing escapes; nothing short of a cgroup per child catches
# that, and richc does not make one for a hook.
COOKIE_VAR = "RICHC_SESSION_COOKIE"


def _kill_cookie(cookie: str, proc_root: Path = Path("/proc")) -> None:
    # A forking daemon may spawn while we look: repeat until a pass kills nothing.
    for _round in range(10):
        found = list(_holding_cookie(cookie, proc_root))
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if not found:
            return


def _holding_cookie(cookie: str, proc_root: Path) -> Iterator[int]:
    marker = f"{COOKIE_VAR}={cookie}".encode()
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or a kernel thread
            continue
        if marker in environ.split(b"\0"):
            yield int(entry.name)


def _kill_group(pgid: int) -> None:
    # The leader may be gone already; its group lives on as long as one member does.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
