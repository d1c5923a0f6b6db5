"""jinja2 rendering of richc's templates. Undefined variables are errors, never empty text."""

from __future__ import annotations

import contextlib
import os
import stat
from functools import cache
from pathlib import Path
from typing import Any

from richc.datafiles import templates_dir

# Where compiled templates are kept between processes; set by the CLI to a directory under
# the host's run dir. None (library use, unit tests) compiles every template afresh.
cache_dir: Path | None = None


@cache
def _environment(cache_in: Path | None) -> Any:
    # jinja2 costs ~20 ms to import, so only commands that render pay for it.
    import shlex

    import jinja2

    class BestEffortCache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: Any) -> None:
            with contextlib.suppress(OSError):  # a full or vanished run dir: compile next time
                super().dump_bytecode(bucket)

    bytecode_cache = None
    if cache_in is not None:
        # Compiling a busybox container's thirteen templates takes ~11 ms; loading them
        # compiled, a tenth of that. jinja keys each entry by the template's source, so an
        # edited template is compiled again. The directory is root's alone: what it holds
        # is executed.
        with contextlib.suppress(OSError):  # a read-only run dir: compile every time
            cache_in.mkdir(mode=0o700, parents=True, exist_ok=True)
            if _private(cache_in):
                bytecode_cache = BestEffortCache(str(cache_in))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        bytecode_cache=bytecode_cache,
    )
    env.filters["shquote"] = shlex.quote
    return env


def _private(directory: Path) -> bool:
    """Whether *directory* is a real directory that only this user can write to: a cache
    someone else could fill would run their code (a stale 0777 dir, a symlink elsewhere)."""
    info = directory.lstat()
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o022


def render(template: str, **context: Any) -> str:
    return str(_environment(cache_dir).get_template(template).render(**context))
