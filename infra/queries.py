"""The archive's named queries, kept as plain SQL files in ``infra/sql/``.

Athena saves them as named queries; a local runner (DuckDB over the local
S3 endpoint) can run the same text. Each file starts with three header
comments::

    -- name: top-failing-agents
    -- description: One line for people choosing a query.
    -- parameters: from_day, to_day

and its body uses positional ``?`` placeholders in that order, which both
Athena's execution parameters and DuckDB's prepared statements take. Days
are ``YYYY-MM-DD`` strings compared with the ``dt`` partition, so a time
window prunes partitions. The body uses only SQL that Athena (Trino) and
DuckDB share, except ``json_extract_scalar``, which DuckDB lacks: a local
runner defines it, returning NULL for text that is not JSON as Athena does.

This module has no Pulumi dependency.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SQL_DIRECTORY = Path(__file__).resolve().parent / "sql"
_HEADER_FIELDS = ("name", "description", "parameters")


@dataclass(frozen=True)
class NamedQuery:
    """One saved query over the ``agent_actions_dlq`` table."""

    name: str
    description: str
    parameters: tuple[str, ...]
    sql: str


def named_queries(directory: Path = SQL_DIRECTORY) -> list[NamedQuery]:
    """Load every ``*.sql`` file of ``directory``, sorted by file name.

    Raises:
        ValueError: When a file lacks a header field or its placeholders do
            not match its declared parameters.
    """
    return [_parse(path) for path in sorted(directory.glob("*.sql"))]


def _parse(path: Path) -> NamedQuery:
    header: dict[str, str] = {}
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        field, separator, value = line.removeprefix("-- ").partition(":")
        if (
            not body
            and line.startswith("-- ")
            and separator
            and field in _HEADER_FIELDS
        ):
            header[field] = value.strip()
        else:
            body.append(line)

    missing = [field for field in _HEADER_FIELDS if field not in header]
    if missing:
        raise ValueError(f"{path.name}: header lacks {', '.join(missing)}")

    sql = "\n".join(body).strip()
    parameters = tuple(
        name.strip() for name in header["parameters"].split(",") if name.strip()
    )
    if sql.count("?") != len(parameters):
        raise ValueError(
            f"{path.name}: {sql.count('?')} placeholders for "
            f"{len(parameters)} declared parameters"
        )
    return NamedQuery(header["name"], header["description"], parameters, sql)
