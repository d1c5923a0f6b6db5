"""Writing data to stdout as a table or as one JSON document."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Sequence
from typing import Any


class Format(enum.StrEnum):
    table = "table"
    json = "json"


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
