"""What a hook is, wherever it came from, and the stages it runs at."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

# Seconds a hook may run when neither it nor its file says otherwise.
DEFAULT_TIMEOUT = 30.0


class Stage(enum.StrEnum):
    prestart = "prestart"
    poststart = "poststart"
    prestop = "prestop"
    poststop = "poststop"

    def blocks(self) -> bool:
        """A failure at this stage stops what richc was doing (start); later stages never block."""
        return self in (Stage.prestart, Stage.poststart)

    def oci_status(self) -> str:
        """The OCI state ``status`` a hook at this stage is told."""
        return {
            Stage.prestart: "creating",
            Stage.poststart: "running",
            Stage.prestop: "running",
            Stage.poststop: "stopped",
        }[self]


class Source(enum.StrEnum):
    """Where a hook was found; hooks run in this order of sources."""

    builtin = "builtin"
    hooks_d = "hooks.d"
    oci = "oci"
    container = "container"


@dataclass(frozen=True)
class Hook:
    """One hook to run at one stage.

    ``argv[0]`` is what the hook sees as its own name; ``path`` is the file executed (they
    differ only for OCI hooks, whose ``args`` carry their own argv[0]). ``problem`` marks a
    hook that cannot run (a broken OCI file); running it counts as a failure.
    """

    name: str
    source: Source
    path: Path
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    on_failure: str = "fail"  # "warn": report, never block
    origin: Path | None = None  # the OCI JSON file or hooks.d directory it came from
    problem: str | None = None

    @property
    def label(self) -> str:
        """The tag the hook's log lines carry: ``hooks.d/10-nfs``, ``oci/podman-hook``."""
        return f"{self.source.value}/{self.name}"

    @property
    def blocking(self) -> bool:
        return self.on_failure != "warn"


@dataclass(frozen=True)
class MatchInfo:
    """What OCI ``when`` conditions are tested against."""

    annotations: tuple[tuple[str, str], ...] = ()
    command: str = ""  # the init's argv[0] (OCI process.args[0])
    has_bind_mounts: bool = False
