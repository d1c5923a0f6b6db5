"""What richc records about a container: :class:`State` and the typed records in it.

Each host-side resource (disk quota, overlay share, lxcfs views, systemd unit, ...) keeps
its own frozen record in its own field, written before the resource is made, so a
``rm --force`` after a crash knows what to undo. Runtime facts (running or not) are read
live; what is recorded of the running init is only what identifies it again.

Schema 2 replaced schema 1's free ``extra`` dict with these fields; :func:`migrate` turns
a schema-1 ``state.json`` into schema 2 when it is read, and the next save writes it back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from richc.errors import RichcError

STATE_SCHEMA = 2

R = TypeVar("R")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class InitRecord:
    """The init richc started: enough to find it again and to tell a reused pid apart."""

    pid: int
    pid_start_time: int | None = None
    # The cgroup the runtime put it in, so stats and set find it without the runtime.
    cgroup_scope: str | None = None
    # LXC's monitor, which forks the new init of an in-container reboot.
    parent_pid: int | None = None
    parent_start_time: int | None = None


@dataclass(frozen=True)
class HookMatchRecord:
    """What OCI hook files' ``when`` conditions saw at the last start: the init's command
    and whether the spec had bind mounts. Kept so poststop and `hooks list` answer the
    same without building the spec again (hooks sit below the lifecycle)."""

    command: str
    has_bind_mounts: bool


@dataclass(frozen=True)
class DiskRecord:
    backend: str | None  # None: no backend could enforce it (best effort)
    limit_bytes: int | None = None
    limit_inodes: int | None = None
    unenforced: str | None = None  # why a requested limit is not (fully) enforced


@dataclass(frozen=True)
class OverlayRecord:
    """A rootfs layered on a shared image: the lower image and the container's layers."""

    image: str
    upper: str
    work: str
    # The idmapped read-only view of the image an unprivileged container's overlay uses as
    # its lower layer (isolation.overlay); None: the image itself (privileged).
    lower: str | None = None


@dataclass(frozen=True)
class ViewRecord:
    source: str
    target: str
    kind: str  # "file" or "dir"


@dataclass(frozen=True)
class LxcfsRecord:
    enabled: bool
    home: str | None = None
    views: tuple[ViewRecord, ...] = ()


@dataclass(frozen=True)
class UnitRecord:
    name: str
    files: tuple[str, ...] = ()
    enabled: bool = False
    installed_at: str = ""


@dataclass(frozen=True)
class NicRecord:
    """One NIC as allocated at create: where it is, its MAC and address, and the name of
    its host-side veth (derived, so a crash's leftover is found again)."""

    index: int
    bridge: str
    mac: str
    host_veth: str
    network: str | None = None  # a managed network; None: an operator's bridge
    address: str | None = None  # A.B.C.D/N; None: the guest asks the bridge's DHCP
    gateway: str | None = None


@dataclass(frozen=True)
class PortRecord:
    host_port: int
    container_port: int
    proto: str = "tcp"
    host_ip: str | None = None


@dataclass(frozen=True)
class NetRecord:
    nics: tuple[NicRecord, ...] = ()
    ports: tuple[PortRecord, ...] = ()  # published to the first NIC's address
    kept_ip: str | None = None  # what --keep-ip found and kept (or why not), for the report


@dataclass(frozen=True)
class SecurityRecord:
    """How a container created since secure defaults is isolated. ``privileged``: no user
    namespace (container root is host root). Otherwise ``id_start`` is the first host id
    of its 65536-id range (the same for users and groups), reserved in ROOT/etc/subuid
    and /etc/subgid before anything is made, and ``ownership`` how its rootfs shows the
    container's ids: ``overlay`` (a shared image through an idmapped read-only lower
    view, the upper layer shifted), ``idmap`` (the runtime gets an idmapped mount of the
    tree), ``shift`` (the tree was chowned once); None until the rootfs is made.
    A state without this record (made before) is privileged, with no seccomp filter or
    masked paths, exactly as it was created."""

    privileged: bool
    id_start: int | None = None
    id_count: int = 65536
    ownership: str | None = None
    ownership_reason: str = ""


@dataclass
class State:
    """What richc recorded about a container. Runtime facts (running, pid) are read live."""

    name: str
    status: str = "creating"  # creating -> created; a "creating" container is a crashed create
    created_at: str = ""
    started_at: str | None = None
    stopped_at: str | None = None
    synced_at: str | None = None  # the last `richc migrate sync` from a live host
    runtime: str = ""
    init: str = ""
    rootfs: str = ""
    applied: list[dict[str, str]] = field(default_factory=list)  # fix-ups applied to the rootfs
    init_run: InitRecord | None = None  # the running init, from start until stop
    stop_requested: str | None = None  # when `richc stop` asked; cleared at start
    restarting: bool = False  # that stop was a `richc restart`
    hook_match: HookMatchRecord | None = None
    disk: DiskRecord | None = None
    overlay: OverlayRecord | None = None
    lxcfs: LxcfsRecord | None = None
    unit: UnitRecord | None = None
    net: NetRecord | None = None
    security: SecurityRecord | None = None  # None: made before secure defaults (privileged)
    schema: int = STATE_SCHEMA

    @property
    def pid(self) -> int | None:
        """The pid richc recorded for the running init, if any (not checked live)."""
        return self.init_run.pid if self.init_run is not None else None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        schema = data.get("schema", 0)
        if not isinstance(schema, int) or schema > STATE_SCHEMA:
            raise RichcError(
                f"state of {data.get('name')} has schema {schema}, newer than this richc knows",
                hint="upgrade richc",
            )
        if schema < 2:
            data = migrate(data)
        return load(cls, data)


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A schema 0/1 state (per-feature state in a free ``extra`` dict) as schema 2."""
    out = {k: v for k, v in data.items() if k != "extra"}
    extra = data.get("extra") or {}
    if isinstance(extra.get("pid"), int):
        out["init_run"] = {
            key: extra.get(key)
            for key in ("pid", "pid_start_time", "cgroup_scope", "parent_pid", "parent_start_time")
        }
    if extra.get("stop_requested"):
        out["stop_requested"] = str(extra["stop_requested"])
    out["restarting"] = bool(extra.get("restarting"))
    if isinstance(extra.get("disk"), dict):
        out["disk"] = extra["disk"]
    share = extra.get("rootfs")
    if isinstance(share, dict) and share.get("mode") == "overlay":
        out["overlay"] = share
    if isinstance(extra.get("lxcfs"), dict):
        out["lxcfs"] = extra["lxcfs"]
    if isinstance(extra.get("unit"), dict):
        out["unit"] = extra["unit"]
    out["schema"] = STATE_SCHEMA
    return out


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def load(cls: type[R], data: Any) -> R:
    """A dataclass *cls* from its ``asdict`` form: unknown keys ignored, lists back to
    tuples, nested records rebuilt from their field types."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        if item.name in data:
            kwargs[item.name] = _value(hints[item.name], data[item.name])
    return cls(**kwargs)


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value(inner[0], value) if len(inner) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return load(hint, value)  # type: ignore[arg-type]
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v) for v in value)
        return tuple(_value(a, v) for a, v in zip(args, value, strict=False))
    return value
