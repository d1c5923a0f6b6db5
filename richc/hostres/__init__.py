"""Host-side resources of a container, behind one protocol the lifecycle loops over.

A host resource is something richc makes on the host for a container and must undo: a
disk quota, the overlay mount of a shared image, lxcfs's views, a systemd unit (and
networking, id maps). Each keeps a typed record in the container's
:class:`~richc.state.State`, written before the thing itself is made, so a crash at any
point leaves a record that :meth:`HostResource.release` can undo.

The lifecycle calls, for every resource in :data:`ORDER`:

* ``prepare`` before each start (mount what a reboot unmounted, start lxcfs, ...), recording
  what it made in the state;
* ``contribute`` while building the spec: a pure function of the record, giving mounts,
  capabilities to drop and the like (:class:`Contribution`);
* ``stopped`` once the init is gone (in reverse order);
* ``release`` at ``rm`` (in reverse order; idempotent, tolerating a half-made resource);
* ``describe`` for ``inspect``: the resource's JSON, or None to leave it out.

Creation is not in the protocol: what a resource needs at create (a quota'd rootfs
directory, the overlay mount) is interleaved with populating the rootfs, so the lifecycle
and :mod:`richc.rootfs` call those steps by name.

Resources are imported on first use, one module each, so a command that needs none of
them (``exec``, ``list``) pays for none.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from richc.spec import Mount, Nic

if TYPE_CHECKING:
    from isolation.policy import SecurityPolicy
    from richc import config as cfg
    from richc.context import Context
    from richc.state import State
    from richc.store import ContainerDir

# Start order; stop and release go in reverse. The id range comes first (the overlay's
# idmapped lower view and the rootfs's ownership need it), then the disk (the rootfs lives
# on it), the overlay is mounted on the rootfs directory, lxcfs views are bound into it.
ORDER = ("security", "disk", "overlay", "lxcfs", "net", "unit")


@dataclass(frozen=True)
class Contribution:
    """What one resource adds to the spec."""

    mounts: tuple[Mount, ...] = ()
    cap_drop: tuple[str, ...] = ()
    nics: tuple[Nic, ...] = ()
    security: SecurityPolicy | None = None  # the security resource's alone


class HostResource(Protocol):
    name: str

    def prepare(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
    ) -> None: ...

    def contribute(self, config: cfg.ContainerConfig, state: State) -> Contribution: ...

    def stopped(self, ctx: Context, cdir: ContainerDir, state: State) -> None: ...

    def release(self, ctx: Context, cdir: ContainerDir, state: State) -> None: ...

    def describe(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig | None, state: State
    ) -> Any: ...


class BaseResource:
    """No-op defaults, so a resource implements only the steps it has."""

    name = ""

    def prepare(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig, state: State
    ) -> None:
        return None

    def contribute(self, config: cfg.ContainerConfig, state: State) -> Contribution:
        return Contribution()

    def stopped(self, ctx: Context, cdir: ContainerDir, state: State) -> None:
        return None

    def release(self, ctx: Context, cdir: ContainerDir, state: State) -> None:
        return None

    def describe(
        self, ctx: Context, cdir: ContainerDir, config: cfg.ContainerConfig | None, state: State
    ) -> Any:
        return None


def get(name: str) -> HostResource:
    resource: HostResource = importlib.import_module(f"richc.hostres.{name}").RESOURCE
    return resource


def all_resources() -> list[HostResource]:
    """Every host resource, in start order."""
    return [get(name) for name in ORDER]


def contributions(config: cfg.ContainerConfig, state: State) -> list[Contribution]:
    return [r.contribute(config, state) for r in all_resources()]
