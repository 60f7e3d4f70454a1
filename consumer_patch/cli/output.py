"""Output for people (aligned tables) and for programs (JSON with ``--json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    out: TextIO | None = None,
) -> None:
    """Print rows as a left-aligned table with a header line."""
    stream = out or sys.stdout
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[index]) for line in cells)])
        for index, column in enumerate(columns)
    ]
    header = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    print(header.rstrip(), file=stream)
    for line in cells:
        text = "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True))
        print(text.rstrip(), file=stream)


def emit_json(data: object, out: TextIO | None = None) -> None:
    print(
        json.dumps(data, indent=2, sort_keys=True, default=str), file=out or sys.stdout
    )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return str(value)
