"""Typed errors. Core code raises these; only the CLI's main turns them into exit codes."""

from __future__ import annotations


class RichcError(Exception):
    """An expected failure: printed as ``error: MESSAGE`` plus a hint, exit status 1."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(RichcError):
    """Bad input on the command line or in a config file (names, sizes, YAML)."""


class ConfigError(UsageError):
    """A config key or value that fails validation; names the key and the value."""

    def __init__(self, key: str, value: object, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"{key}: {value!r}: {problem}", hint=hint)
        self.key = key
        self.value = value


class NotFound(RichcError):
    """A container, file or source that does not exist."""


class Conflict(RichcError):
    """The request clashes with current state: the name exists, the container runs, ..."""


class Busy(Conflict):
    """Another richc process holds the container's lock."""


class RuntimeFailure(RichcError):
    """The container runtime (liblxc, runc) refused or failed an operation."""


class HostUnsupported(RichcError):
    """The host lacks something richc needs for this request (a kernel feature, a tool)."""


class CommandFailed(RichcError):
    """A child process richc ran exited non-zero, died by a signal or was not found."""

    def __init__(
        self,
        argv: list[str],
        returncode: int,
        stderr: str = "",
        *,
        hint: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        if returncode == 127:
            what = "was not found"
        elif returncode < 0:
            what = f"was killed by signal {-returncode}"
        else:
            what = f"failed with exit status {returncode}"
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        message = f"{argv[0]} {what}" + (f": {detail}" if detail else "")
        super().__init__(message, hint=hint)
