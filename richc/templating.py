"""jinja2 rendering of richc's templates. Undefined variables are errors, never empty text."""

from __future__ import annotations

import shlex
from functools import cache
from typing import Any

from richc.resources import templates_dir


@cache
def _environment() -> Any:
    # jinja2 costs ~90 ms to import, so only commands that render pay for it.
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["shquote"] = shlex.quote
    return env


def render(template: str, **context: Any) -> str:
    return str(_environment().get_template(template).render(**context))
