"""`richc exec`: run a command inside a running container, passing its exit code through."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from richc.context import Context
from richc.errors import Conflict, NotFound, RichcError
from richc.runtime import ExecRequest, runtime_for

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The chroot(1)/Podman convention for "richc could not run it", "not executable", "not found".
EXIT_CANNOT_RUN = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127


class ExecFailed(RichcError):
    def __init__(self, message: str, exit_code: int, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def _resolve_in(root: Path, relpath: str) -> Path:
    """Resolve *relpath* inside *root* the way the container would, symlinks kept inside."""
    current = root
    parts = [p for p in relpath.split("/") if p]
    hops = 0
    while parts:
        part = parts.pop(0)
        candidate = current / part
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise ExecFailed(f"too many symlinks resolving {relpath}", EXIT_NOT_FOUND)
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            parts = [p for p in target.split("/") if p] + parts
        elif part == "..":
            current = current.parent if current != root else root
        else:
            current = candidate
    return current


def find_command(root: Path, command: str, path_var: str) -> str:
    """Locate *command* in the container's tree, as execvp would; raise 126/127 errors."""
    candidates = (
        [command] if "/" in command else [f"{d}/{command}" for d in path_var.split(":") if d]
    )
    for candidate in candidates:
        resolved = _resolve_in(root, candidate if candidate.startswith("/") else "/" + candidate)
        try:
            info = resolved.stat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) or not info.st_mode & 0o111:
            if "/" in command:
                raise ExecFailed(
                    f"{command}: permission denied (not executable)", EXIT_NOT_EXECUTABLE
                )
            continue
        return candidate
    raise ExecFailed(
        f"{command}: command not found in the container",
        EXIT_NOT_FOUND,
        hint=f"the container's PATH is {path_var}",
    )


def lookup_user(root: Path, user: str) -> tuple[int, int, str]:
    """Resolve NAME, UID or UID:GID against the container's own /etc/passwd."""
    name, _, group = user.partition(":")
    entries = []
    with contextlib.suppress(OSError):
        entries = [line.split(":") for line in (root / "etc/passwd").read_text().splitlines()]
    for entry in entries:
        if len(entry) >= 7 and (entry[0] == name or entry[2] == name):
            return int(entry[2]), int(group or entry[3]), entry[5] or "/"
    if name.isdigit():
        return int(name), int(group or name), "/"
    raise NotFound(f"user {name} does not exist in the container", hint="check its /etc/passwd")


def exec_in(
    ctx: Context,
    name: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    user: str | None = None,
    cwd: str | None = None,
) -> int:
    if not argv:
        raise ExecFailed(
            "no command given", EXIT_CANNOT_RUN, hint=f"richc exec {name} -- CMD [ARG...]"
        )
    cdir = ctx.store.get(name)
    state = cdir.load_state()
    config = cdir.load_config()
    status = runtime_for(state).status(cdir)
    if not status.running or status.pid is None:
        raise ExecFailed(
            f"{name} is not running", EXIT_CANNOT_RUN, hint=f"start it with `richc start {name}`"
        )
    # /proc/PID/root is the container's root as its init sees it, mounts included.
    root = Path(f"/proc/{status.pid}/root")
    uid, gid, home = lookup_user(root, user) if user else (0, 0, "/root")
    merged = {"PATH": DEFAULT_PATH, "HOME": home, "TERM": os.environ.get("TERM", "xterm")}
    merged.update({"container": "lxc"})
    merged.update(config.env_dict)
    merged.update(env or {})
    find_command(root, argv[0], merged["PATH"])
    request = ExecRequest(
        argv=tuple(argv), env=tuple(merged.items()), uid=uid, gid=gid, cwd=cwd or "/"
    )
    try:
        return runtime_for(state).exec(cdir, request)
    except Conflict:
        raise
    except RichcError as exc:
        raise ExecFailed(exc.message, EXIT_CANNOT_RUN, hint=exc.hint) from exc
