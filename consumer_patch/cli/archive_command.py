"""``agent-dlq archive query | queries``: SQL over the S3 archive with DuckDB."""

from __future__ import annotations

import argparse
import os

from consumer_patch.archive.named_queries import NamedQuery, named_queries
from consumer_patch.archive.query import (
    UNIQUE_VIEW,
    ArchiveDatabase,
    ArchiveQueryError,
    QueryResult,
)
from consumer_patch.archive.s3 import ENDPOINT_VARIABLE
from consumer_patch.cli.output import emit_json, table
from consumer_patch.connector import ARCHIVE_TABLE_NAME
from consumer_patch.stack.services import StackPaths

QUERY_LIST_COLUMNS = ("name", "parameters", "description")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "archive",
        help="query the dead-letter archive in S3 as Athena does",
        description=f"Run SQL over the table {ARCHIVE_TABLE_NAME} (every archived "
        f"line, as in Athena; {UNIQUE_VIEW} keeps one per dead letter) with DuckDB "
        "through the S3 endpoint. Settings come from the environment when "
        f"{ENDPOINT_VARIABLE} is set, else from the local stack's .stack/env.",
    )
    actions = parser.add_subparsers(dest="archive_action", required=True)

    query = actions.add_parser(
        "query", help="run one SQL statement", description="Run one SQL statement."
    )
    query.add_argument(
        "sql", help=f'such as "SELECT count(*) FROM {ARCHIVE_TABLE_NAME}"'
    )
    query.add_argument("--json", action="store_true", help="print JSON")

    queries = actions.add_parser(
        "queries",
        help="list the named queries Athena has, or run one",
        description="Without a name, list the named queries; with a name, run it "
        "with one argument per parameter, such as "
        "`agent-dlq archive queries dead-letters-by-error-type 2026-12-01 2026-12-31`.",
    )
    queries.add_argument("name", nargs="?", help="named query to run")
    queries.add_argument("arguments", nargs="*", help="its parameters, in order")
    queries.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def archive_environment() -> dict[str, str]:
    """The S3 settings: the process environment when it names an endpoint.

    Otherwise the local stack's ``.stack/env``, so that AWS keys a user has
    set for real AWS never leak into requests to the local endpoint.
    """
    if os.environ.get(ENDPOINT_VARIABLE):
        return dict(os.environ)
    env_file = StackPaths.default().env_file
    if not env_file.is_file():
        return {}
    values = {}
    for line in env_file.read_text().splitlines():
        name, separator, value = line.partition("=")
        if separator and name.strip():
            values[name.strip()] = value.strip()
    return values


def run(arguments: argparse.Namespace) -> int:
    if arguments.archive_action == "queries" and arguments.name is None:
        _list_queries(named_queries(), arguments.json)
        return 0

    with ArchiveDatabase.from_environment(archive_environment()) as database:
        if arguments.archive_action == "query":
            result = database.execute(arguments.sql)
        else:
            result = database.run_named(_find(arguments.name), arguments.arguments)
    _print_result(result, arguments.json)
    return 0


def _find(name: str) -> NamedQuery:
    queries = {query.name: query for query in named_queries()}
    if name not in queries:
        known = ", ".join(sorted(queries))
        raise ArchiveQueryError(f"no named query {name!r}; known: {known}")
    return queries[name]


def _list_queries(queries: list[NamedQuery], as_json: bool) -> None:
    rows = [
        {
            "name": query.name,
            "parameters": ", ".join(query.parameters),
            "description": query.description,
            "sql": query.sql,
        }
        for query in queries
    ]
    if as_json:
        emit_json({"queries": rows})
    else:
        table(rows, QUERY_LIST_COLUMNS)


def _print_result(result: QueryResult, as_json: bool) -> None:
    if as_json:
        emit_json({"columns": list(result.columns), "rows": result.as_dicts()})
    else:
        table(result.as_dicts(), result.columns)
