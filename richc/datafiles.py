"""Locate richc's data (templates/, hooks/) the same way in a wheel and in a checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """Return the directory holding richc's *name* data ("templates" or "hooks").

    A wheel carries them under ``richc/_data``; a checkout (or editable install) has them at
    the top of the repository, next to the package.
    """
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"richc data directory {name!r} is missing from the installation")


def templates_dir() -> Path:
    return data_dir("templates")


def hooks_dir() -> Path:
    return data_dir("hooks")
