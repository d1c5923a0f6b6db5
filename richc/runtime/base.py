"""What richc asks of a container runtime (LXC or runc): the protocol and its values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # `richc exec` and `list` never build a spec: skip its import
    from richc.spec import ContainerSpec
    from richc.store import ContainerDir


@dataclass(frozen=True)
class RuntimeStatus:
    running: bool
    pid: int | None = None


@dataclass(frozen=True)
class ExecRequest:
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    uid: int = 0
    gid: int = 0
    cwd: str = "/"


class Runtime(Protocol):
    name: str

    def render(self, spec: ContainerSpec, cdir: ContainerDir) -> None:
        """Write the runtime's own config (LXC config, OCI bundle) from the spec."""

    def start(self, spec: ContainerSpec, cdir: ContainerDir) -> int:
        """Start init detached and return its host pid."""

    def status(self, cdir: ContainerDir) -> RuntimeStatus: ...

    def shutdown(self, spec: ContainerSpec, cdir: ContainerDir, timeout: float) -> bool:
        """Send the init's halt signal and wait; True if it stopped within *timeout*."""

    def kill(self, cdir: ContainerDir) -> None:
        """Stop the container at once (SIGKILL to init) and wait until it is gone."""

    def exec(self, cdir: ContainerDir, request: ExecRequest) -> int:
        """Run a command inside with inherited stdio; return its exit code."""

    def cleanup(self, cdir: ContainerDir) -> None:
        """Remove what the runtime keeps outside the container directory."""

    def cgroup_scope(self, name: str) -> str:
        """The directory the runtime makes for container *name* below each hierarchy's root
        (``cgroups.locate``'s *scope*): the init may move into a child of it."""
