"""The named queries load, and run over a table with the archive's columns.

SQLite stands in for the engine: it shares the SQL the queries restrict
themselves to, and ``json_extract_scalar`` is defined the way Athena
behaves (NULL for text that is not JSON). A query naming a column the
envelope does not have fails here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumer_patch.connector import envelope_glue_columns
from infra.queries import NamedQuery, named_queries
from tests.infra.mocking import REPOSITORY

EXAMPLES = REPOSITORY / "schemas" / "examples" / "dead-letter-envelope" / "valid"


def _json_extract_scalar(document: str | None, path: str) -> Any:
    if document is None or not path.startswith("$."):
        return None
    try:
        node: Any = json.loads(document)
    except ValueError:
        return None
    for part in path[2:].split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return None if isinstance(node, dict | list) else node


def _envelopes() -> list[dict[str, Any]]:
    examples = [
        json.loads(path.read_text()) for path in sorted(EXAMPLES.glob("*.json"))
    ]
    agent = {**examples[-1], "dead_letter_id": "3f0c1d2e-0000-4000-8000-000000000001"}
    agent["original_value"] = json.dumps({"agent_name": "planner", "duration_ms": -1})
    # The archive is written at least once: a duplicate must not be counted.
    return [*examples, agent, dict(agent)]


@pytest.fixture
def archive() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    connection.create_function("json_extract_scalar", 2, _json_extract_scalar)
    columns = [column.name for column in envelope_glue_columns()] + ["dt"]
    connection.execute(f"CREATE TABLE agent_actions_dlq ({', '.join(columns)})")
    for envelope in _envelopes():
        row = {**envelope, "dt": envelope["failed_at"][:10]}
        row["original_headers"] = json.dumps(row["original_headers"])
        connection.execute(
            f"INSERT INTO agent_actions_dlq VALUES ({', '.join('?' * len(columns))})",
            [row[name] for name in columns],
        )
    yield connection
    connection.close()


def _query(name: str) -> NamedQuery:
    (query,) = [query for query in named_queries() if query.name == name]
    return query


def test_three_named_queries_with_declared_parameters() -> None:
    queries = {query.name: query for query in named_queries()}

    assert set(queries) == {
        "dead-letters-by-error-type",
        "dead-letters-by-correlation-id",
        "top-failing-agents",
    }
    assert queries["dead-letters-by-error-type"].parameters == ("from_day", "to_day")
    assert queries["dead-letters-by-correlation-id"].parameters == ("correlation_id",)
    assert queries["top-failing-agents"].parameters == ("from_day", "to_day")
    for query in queries.values():
        assert query.description, query.name
        assert not query.sql.startswith("--"), f"{query.name} kept its header"


def test_by_error_type_counts_distinct_dead_letters_in_the_window(
    archive: sqlite3.Connection,
) -> None:
    sql = _query("dead-letters-by-error-type").sql

    rows = archive.execute(sql, ["2026-12-03", "2026-12-03"]).fetchall()
    outside = archive.execute(sql, ["2026-12-04", "2026-12-31"]).fetchall()

    assert [row[:3] for row in rows] == [
        ("ValidationError", "permanent", 2),
        ("DecodeError", "permanent", 1),
    ]
    assert outside == []


def test_by_correlation_id_lists_each_dead_letter_once(
    archive: sqlite3.Connection,
) -> None:
    rows = archive.execute(_query("dead-letters-by-correlation-id").sql, ["c-2"])

    assert [row[1] for row in rows] == [
        "0d5c1f9e-8a51-4b8f-9f3b-3a9f1c2d7e10",
        "3f0c1d2e-0000-4000-8000-000000000001",
    ]


def test_top_failing_agents_reads_agent_name_from_utf8_values(
    archive: sqlite3.Connection,
) -> None:
    rows = archive.execute(
        _query("top-failing-agents").sql, ["2026-12-01", "2026-12-31"]
    ).fetchall()

    # The base64 value is skipped; the other example's value lacks agent_name.
    assert sorted(rows, key=lambda row: str(row[0])) == [
        (None, 1, 1),
        ("planner", 1, 1),
    ]


def test_header_fields_are_required(tmp_path: Path) -> None:
    (tmp_path / "broken.sql").write_text("-- name: broken\nSELECT 1\n")

    with pytest.raises(ValueError, match="description, parameters"):
        named_queries(tmp_path)


def test_placeholders_must_match_parameters(tmp_path: Path) -> None:
    (tmp_path / "broken.sql").write_text(
        "-- name: broken\n-- description: d\n-- parameters: a, b\nSELECT ?\n"
    )

    with pytest.raises(ValueError, match="1 placeholders for 2"):
        named_queries(tmp_path)
