"""Choosing a backend: by name, or ``auto`` by the filesystem that holds the store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from quota.backend import QuotaBackend, StrPath, existing_parent, no_inode_limits
from quota.btrfs import BtrfsBackend
from quota.errors import BackendUnavailable, QuotaError
from quota.loop import LoopBackend
from quota.mounts import BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC, fs_magic
from quota.project import ProjectBackend
from quota.registry import REGISTRY_NAME

BACKENDS = ("project", "btrfs", "loop")


def make_backend(name: str, store: StrPath, *, registry: StrPath | None = None) -> QuotaBackend:
    """The backend called *name*; the project registry defaults to STORE/quota-projects.json."""
    if name == "project":
        return ProjectBackend(registry or Path(store) / REGISTRY_NAME)
    if name == "btrfs":
        return BtrfsBackend()
    if name == "loop":
        return LoopBackend()
    raise ValueError(f"unknown disk backend {name!r} (choose from auto, {', '.join(BACKENDS)})")


@dataclass(frozen=True)
class Probe:
    """Whether *backend* can enforce a limit at *path*, and if not, why (for doctor)."""

    backend: str
    ok: bool
    reason: str = ""
    hint: str | None = None
    errno: int = 0


def probe(name: str, path: StrPath, *, registry: StrPath | None = None) -> Probe:
    try:
        make_backend(name, path, registry=registry).check(path)
    except QuotaError as exc:
        return Probe(name, False, exc.message, exc.hint, exc.errno or 0)
    except OSError as exc:
        return Probe(name, False, f"{exc.strerror or exc}", None, exc.errno or 0)
    return Probe(name, True)


def preference(path: StrPath) -> tuple[str, ...]:
    """Backends ``auto`` tries, best first: the filesystem's own quota, then a loop image."""
    magic = fs_magic(existing_parent(path))
    if magic == BTRFS_SUPER_MAGIC:
        return ("btrfs", "loop")
    if magic in (EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC):
        return ("project", "loop")
    return ("loop",)


def probe_all(path: StrPath, *, registry: StrPath | None = None) -> list[Probe]:
    return [probe(name, path, registry=registry) for name in BACKENDS]


def _check(backend: QuotaBackend, path: StrPath, inodes: bool) -> None:
    if inodes and not backend.inode_limits:
        raise no_inode_limits(backend.name, path, "its limits count bytes, not files")
    backend.check(path)


@dataclass(frozen=True)
class Selection:
    """What :func:`select_backend` does for *path*, spelled out: every backend it tries, in
    order, with why each failed, up to the one it takes (for ``richc doctor``)."""

    path: str
    requested: str
    tried: tuple[Probe, ...]

    @property
    def chosen(self) -> str | None:
        return next((p.backend for p in self.tried if p.ok), None)


def _attempts(
    path: StrPath, requested: str, registry: StrPath | None, inodes: bool
) -> Iterator[tuple[QuotaBackend, QuotaError | None]]:
    """Each backend *requested* stands for at *path*, checked in order, until one passes.
    The one walk both :func:`select_backend` and :func:`explain` take, so doctor's answer
    is create's."""
    names = preference(path) if requested == "auto" else (requested,)
    for name in names:
        backend = make_backend(name, path, registry=registry)
        try:
            _check(backend, path, inodes)
        except QuotaError as exc:
            yield backend, exc
            continue
        yield backend, None
        return


def select_backend(
    path: StrPath,
    requested: str = "auto",
    *,
    registry: StrPath | None = None,
    inodes: bool = False,
) -> QuotaBackend:
    """The backend that will limit rootfs directories under *path* (the store), and
    their inode counts too when *inodes* is set.

    A named backend that cannot work raises its own error (not mounted with prjquota, not
    btrfs, no inode limits...). ``auto`` takes the first that works and raises
    BackendUnavailable, with every reason, when none does.
    """
    reasons: dict[str, QuotaError] = {}
    for backend, exc in _attempts(path, requested, registry, inodes):
        if exc is None:
            return backend
        if requested != "auto":
            raise exc
        reasons[backend.name] = exc
    first = next(iter(reasons.values()))
    detail = "; ".join(f"{name}: {exc.message}" for name, exc in reasons.items())
    raise BackendUnavailable(
        f"no disk quota backend can enforce a limit under {os.fspath(path)} ({detail})",
        path,
        reasons=reasons,
        hint=first.hint,
    )


def explain(
    path: StrPath,
    requested: str = "auto",
    *,
    registry: StrPath | None = None,
    inodes: bool = False,
) -> Selection:
    """The choice :func:`select_backend` makes for *path*, spelled out instead of raised."""
    tried: list[Probe] = []
    try:
        for backend, exc in _attempts(path, requested, registry, inodes):
            if exc is None:
                tried.append(Probe(backend.name, True))
            else:
                tried.append(Probe(backend.name, False, exc.message, exc.hint, exc.errno or 0))
    except OSError as err:  # a check that failed outright, where select_backend raises
        tried.append(Probe(requested, False, f"{err.strerror or err}", None, err.errno or 0))
    return Selection(os.fspath(path), requested, tuple(tried))
