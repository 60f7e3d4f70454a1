"""The archive's named queries, kept as plain SQL files in ``infra/sql/``.

Athena saves them as named queries (the Pulumi program reads them through
``infra/queries.py``), and ``agent-dlq archive queries`` runs the same text
with DuckDB. Each file starts with three header comments::

    -- name: top-failing-agents
    -- description: One line for people choosing a query.
    -- parameters: from_day, to_day

and its body uses positional ``?`` placeholders in that order, which both
Athena's execution parameters and DuckDB's prepared statements take. Days
are ``YYYY-MM-DD`` strings compared with the ``dt`` partition, so a time
window prunes partitions. The body uses only SQL that Athena (Trino) and
DuckDB share, except ``json_extract_scalar``, which DuckDB lacks:
:mod:`consumer_patch.archive.query` defines it, returning NULL for text that
is not JSON as Athena does.

The files ship in the wheel as ``consumer_patch/_sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
_HEADER_FIELDS = ("name", "description", "parameters")


@dataclass(frozen=True)
class NamedQuery:
    """One saved query over the ``agent_actions_dlq`` table."""

    name: str
    description: str
    parameters: tuple[str, ...]
    sql: str


def sql_directory() -> Path:
    """The named queries' folder: the packaged copy, else the repository's."""
    for candidate in (_PACKAGE / "_sql", _PACKAGE.parent / "infra" / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the named queries (infra/sql) are missing")


def named_queries(directory: Path | None = None) -> list[NamedQuery]:
    """Load every ``*.sql`` file of ``directory``, sorted by file name.

    Args:
        directory: Where the files are; by default :func:`sql_directory`.

    Raises:
        ValueError: When a file lacks a header field or its placeholders do
            not match its declared parameters.
    """
    folder = directory or sql_directory()
    return [_parse(path) for path in sorted(folder.glob("*.sql"))]


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
