"""Find the hooks of a stage, from the four sources, in the order they run.

1. built-in hooks shipped with richc: ``hooks/builtin/STAGE/*``;
2. the operator's ``/etc/richc/hooks.d/STAGE/*``, in lexical order;
3. OCI hook files ``/etc/richc/hooks.d/*.json`` whose ``when`` matches the container;
4. the container's own ``hooks:`` (config file or ``--hook STAGE=PATH``).

In the two directories, as with run-parts(8), a file that is not executable is skipped
(``chmod -x`` disables a hook), and so are dot files and packaging leftovers
(``*~``, ``*.dpkg-old``, ``*.rpmsave``, ...).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from richc import config as cfg
from richc.hookrun import safety
from richc.hookrun.model import DEFAULT_TIMEOUT, Hook, MatchInfo, Source, Stage
from richc.paths import HostPaths

IGNORED_SUFFIXES = (
    "~", ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".rpmnew", ".rpmsave",
    ".rpmorig", ".swp", ".disabled", ".bak",
)  # fmt: skip


def builtin_dir() -> Path:
    from richc.datafiles import hooks_dir

    return hooks_dir() / "builtin"


@dataclass(frozen=True)
class Skipped:
    """A file found in a hook directory that will not run, and why (for `hooks list`)."""

    path: Path
    reason: str


def ignored_name(name: str) -> bool:
    return name.startswith(".") or name.endswith(IGNORED_SUFFIXES)


def scan_dir(directory: Path, source: Source) -> tuple[list[Hook], list[Skipped]]:
    """The executables of one hook directory, sorted by name (bytewise, as in C locale)."""
    hooks: list[Hook] = []
    skipped: list[Skipped] = []
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return hooks, skipped
    for name in names:
        path = directory / name
        if ignored_name(name):
            continue
        if not path.is_file():
            skipped.append(Skipped(path, "not a regular file"))
            continue
        if not os.access(path, os.X_OK):
            skipped.append(Skipped(path, "not executable (chmod +x to enable it)"))
            continue
        hooks.append(Hook(name=name, source=source, path=path, argv=(str(path),), origin=directory))
    return hooks, skipped


def oci_files(paths: HostPaths) -> list[Path]:
    try:
        names = sorted(os.listdir(paths.hooks_d))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [paths.hooks_d / n for n in names if n.endswith(".json") and not n.startswith(".")]


def oci_hooks(paths: HostPaths, stage: Stage, match: MatchInfo) -> Iterator[Hook]:
    """OCI hooks for *stage* whose conditions hold; a broken file becomes a failing hook.

    A broken or unsafe file cannot be trusted to say which stages it meant, so it fails at
    every stage: an error in a hook file must not quietly drop a hook the operator relies on.
    """
    files = oci_files(paths)
    if files:
        from richc.hookrun import (
            ocihooks as oci,  # its parser and `when` model: only with OCI files
        )
    for file in files:
        try:
            # Whoever can edit the file chooses what runs as root: it is checked like a hook.
            safety.check(file)
            parsed = oci.load(file)
        except (oci.OciHookError, safety.UnsafeHook) as exc:
            yield Hook(
                name=file.stem,
                source=Source.oci,
                path=file,
                argv=(str(file),),
                origin=file,
                problem=f"{exc.message}; {exc.hint}" if exc.hint else exc.message,
            )
            continue
        if stage in parsed.richc_stages() and parsed.when.matches(match):
            yield parsed.hook()


def container_hooks(config: cfg.ContainerConfig, stage: Stage) -> Iterator[Hook]:
    for ref in config.hooks_for(stage.value):
        path = Path(ref.path)
        yield Hook(
            name=path.name,
            source=Source.container,
            path=path,
            argv=(ref.path, *ref.args),
            env=ref.env,
            timeout=ref.timeout if ref.timeout is not None else DEFAULT_TIMEOUT,
            on_failure=ref.on_failure,
        )


def resolve(
    paths: HostPaths, config: cfg.ContainerConfig, stage: Stage, match: MatchInfo
) -> list[Hook]:
    """Every hook that runs at *stage* for this container, in running order."""
    hooks = scan_dir(builtin_dir() / stage.value, Source.builtin)[0]
    hooks += scan_dir(paths.hooks_d / stage.value, Source.hooks_d)[0]
    hooks += oci_hooks(paths, stage, match)
    hooks += container_hooks(config, stage)
    return hooks


def match_info(
    config: cfg.ContainerConfig, init: str, init_argv0: str, has_bind_mounts: bool
) -> MatchInfo:
    return MatchInfo(
        annotations=container_annotations(config, init),
        command=init_argv0,
        has_bind_mounts=has_bind_mounts,
    )


def container_annotations(config: cfg.ContainerConfig, init: str) -> tuple[tuple[str, str], ...]:
    """The OCI annotations a container's hooks see (and ``when.annotations`` matches):
    richc's own ``io.richc.*``, then the config's ``annotations`` (``--annotation K=V``)."""
    return (
        ("io.richc.name", config.name),
        ("io.richc.source", config.source),
        ("io.richc.init", init),
        *config.annotations,
    )
