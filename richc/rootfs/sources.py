"""What ``--from`` names: parsed and checked before anything is made."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path

from richc.errors import NotFound, UsageError

DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")
SUITE_RE = re.compile(r"^[a-z][a-z0-9.-]*$")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tzst", ".tar.bz2")


class Kind(enum.StrEnum):
    busybox = "busybox"
    debian = "debian"
    dir = "dir"
    tar = "tar"
    disk = "disk"  # a VM disk image: raw, qcow2, vmdk, vdi, vhd(x)
    ssh = "ssh"  # a live host, copied with rsync over ssh

    @property
    def migrated(self) -> bool:
        """A VM's own tree (not an image richc builds): it keeps what it has."""
        return self not in (Kind.busybox, Kind.debian)


@dataclass(frozen=True)
class Source:
    kind: Kind
    value: str = ""  # the suite, or the absolute path

    @property
    def path(self) -> Path:
        return Path(self.value)

    @property
    def cached(self) -> bool:
        """Built once into images/ and shared by every container made from it."""
        return self.kind in (Kind.busybox, Kind.debian)

    def __str__(self) -> str:
        if self.kind is Kind.ssh:
            return self.value
        return "busybox" if self.kind is Kind.busybox else f"{self.kind.value}:{self.value}"


def known_suite(suite: str, scripts: Path = DEBOOTSTRAP_SCRIPTS) -> bool:
    """debootstrap knows how to build *suite* (the mirror may still lack it)."""
    return bool(SUITE_RE.match(suite)) and (scripts / suite).exists()


def parse(text: str) -> Source:
    """Parse and check a ``--from`` value: the suite is known, the path exists."""
    if text == "busybox":
        return Source(Kind.busybox)
    if text.startswith("debian:"):
        suite = text.removeprefix("debian:")
        if not known_suite(suite):
            raise UsageError(
                f"unknown Debian suite {suite!r}",
                hint="use a suite debootstrap knows, e.g. debian:bookworm or debian:bullseye"
                f" (see {DEBOOTSTRAP_SCRIPTS})",
            )
        return Source(Kind.debian, suite)
    if text.startswith("ssh://"):
        from vmimport import InvalidSource, parse_source

        try:
            return Source(Kind.ssh, str(parse_source(text)))
        except InvalidSource as exc:
            raise UsageError(exc.message, hint=exc.hint) from None
    kind: Kind | None = None
    raw = text
    for prefix, prefixed in (("dir:", Kind.dir), ("tar:", Kind.tar), ("disk:", Kind.disk)):
        if text.startswith(prefix):
            kind, raw = prefixed, text.removeprefix(prefix)
    if kind is None and ":" in text.split("/", 1)[0]:
        raise UsageError(
            f"unknown source {text!r}",
            hint="use busybox, debian:SUITE, dir:PATH, tar:PATH, disk:IMAGE, ssh://USER@HOST"
            " or a path",
        )
    path = Path(raw).expanduser().absolute()
    if not path.exists():
        raise NotFound(
            f"source {raw} does not exist",
            hint="give the path of a root filesystem directory or a tarball of one",
        )
    if kind is None:
        kind = Kind.dir if path.is_dir() else Kind.tar
    if kind is Kind.dir and not path.is_dir():
        raise UsageError(f"source {raw} is not a directory", hint=f"use tar:{raw} for a tarball")
    if kind is Kind.disk and path.is_dir():
        raise UsageError(
            f"source {raw} is a directory, not a disk image", hint=f"use dir:{raw} for a tree"
        )
    if kind is Kind.tar and not path.is_file():
        raise UsageError(f"source {raw} is not a file", hint=f"use dir:{raw} for a directory")
    return Source(kind, str(path))


def check_outside(source: Source, store: Path) -> None:
    """A directory source must not hold richc's store: the copy would copy itself."""
    inner = store.resolve()
    outer = source.path.resolve()
    if inner == outer or outer in inner.parents:
        raise UsageError(
            f"source {source.path} contains richc's containers ({store})",
            hint="copy from a mounted VM disk or a directory outside richc's store",
        )
