"""Writing data to stdout as a table or as one JSON document."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer


class Format(enum.StrEnum):
    table = "table"
    json = "json"


# Every command that lists or shows takes it after its own name (CLI.md).
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    sys.stdout.write(line.format(*headers).rstrip() + "\n")
    for row in cells:
        sys.stdout.write(line.format(*row).rstrip() + "\n")


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``[("disk.limit_bytes", 67108864), ...]``: a nested document as dotted keys."""
    if isinstance(data, dict) and data:
        out: list[tuple[str, Any]] = []
        for key, value in data.items():
            out += flatten(value, f"{prefix}{key}.")
        return out
    if isinstance(data, list) and data and any(isinstance(v, dict | list) for v in data):
        out = []
        for index, value in enumerate(data):
            out += flatten(value, f"{prefix}{index}.")
        return out
    if isinstance(data, list):
        data = ", ".join(str(v) for v in data) if data else None
    elif isinstance(data, dict):
        data = None
    return [(prefix.rstrip("."), data)]
