"""Query the dead-letter archive in S3 with DuckDB, as Athena queries it.

:class:`ArchiveDatabase` opens an in-memory DuckDB that reads the archive's
objects through the S3 endpoint (the ``httpfs`` extension from the pinned
``duckdb-ext-httpfs`` wheel; nothing is downloaded) and exposes:

- ``agent_actions_dlq``: every archived line as written, duplicates
  included, with the Glue table's columns (derived from the envelope schema)
  plus the ``dt`` partition column: what Athena's table returns, so a query
  gives the same answer here and there.
- ``agent_actions_dlq_unique``: one row per ``dead_letter_id`` (the sink
  delivers at least once, and a dead letter published twice carries the
  same id), a local convenience; in Athena, deduplicate in the query as the
  named queries do.

The named queries run unchanged. The one translation for DuckDB lives here:
Athena's ``json_extract_scalar`` is defined as a macro that behaves like it
(NULL for text that is not JSON, for a missing path, and for an object or
array).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb

from consumer_patch.archive.named_queries import NamedQuery
from consumer_patch.archive.s3 import S3Location
from consumer_patch.connector import (
    ARCHIVE_TABLE_NAME,
    DEFAULT_ARCHIVE_LAYOUT,
    ArchiveLayout,
    envelope_glue_columns,
)
from consumer_patch.errors import AgentDLQError

__all__ = [
    "UNIQUE_VIEW",
    "ArchiveDatabase",
    "ArchiveQueryError",
    "QueryResult",
    "duckdb_type",
]

UNIQUE_VIEW = f"{ARCHIVE_TABLE_NAME}_unique"

# Athena's json_extract_scalar, in DuckDB terms. Nested CASEs rather than AND:
# only rows holding valid JSON reach json_type, which fails on anything else.
_JSON_EXTRACT_SCALAR = """
CREATE OR REPLACE MACRO json_extract_scalar(document, path) AS
    CASE WHEN json_valid(document) THEN
        CASE WHEN json_type(document, path) IN ('OBJECT', 'ARRAY') THEN NULL
             ELSE json_extract_string(document, path)
        END
    END
"""

_SCALAR_TYPES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
}


class ArchiveQueryError(AgentDLQError):
    """A query over the archive failed; the message holds DuckDB's reason."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class ArchiveDatabase:
    """An in-memory DuckDB with the archive's table over the S3 endpoint.

    Args:
        location: S3 endpoint, keys and bucket (see ``S3Location``).
        layout: Where in the bucket the archive lives; the same layout the
            connector writes and the Glue table reads.

    Note:
        The views read S3 on every query, so a query sees the objects that
        exist when it runs. Use as a context manager, or call ``close``.
    """

    def __init__(
        self, location: S3Location, layout: ArchiveLayout = DEFAULT_ARCHIVE_LAYOUT
    ):
        self._location = location
        self._layout = layout
        self._connection = duckdb.connect(
            ":memory:", config={"autoinstall_known_extensions": "false"}
        )
        try:
            self._load_httpfs()
            self._connection.execute(self._secret_statement())
            self._connection.execute(_JSON_EXTRACT_SCALAR)
            self.refresh()
        except duckdb.Error as error:
            self._connection.close()
            raise ArchiveQueryError(f"opening the archive failed: {error}") from error

    @classmethod
    def from_environment(
        cls,
        environment: Mapping[str, str],
        layout: ArchiveLayout = DEFAULT_ARCHIVE_LAYOUT,
    ) -> ArchiveDatabase:
        """Open the archive named by the ``AWS_*`` and ``ARCHIVE_BUCKET`` settings."""
        return cls(S3Location.from_environment(environment), layout)

    @property
    def objects_pattern(self) -> str:
        """Glob of the archived objects: the gzip files of every day partition.

        Note:
            Athena reads every object under the table's location. Locally
            only names ending in ``.gz`` (what every connector flavor
            writes) are read, because s3proxy lists an upload's temporary
            file under its final name plus a suffix until the upload ends.
        """
        prefix = self._layout.table_prefix
        column = self._layout.partition_column
        return f"s3://{self._location.bucket}/{prefix}{column}=*/*.gz"

    def refresh(self) -> None:
        """(Re)define the views; call after the first objects appear."""
        source = self._archive_select() if self._has_objects() else self._empty_select()
        self._connection.execute(
            f"CREATE OR REPLACE VIEW {ARCHIVE_TABLE_NAME} AS {source}"
        )
        # One row per dead letter: the first archived copy of each id.
        self._connection.execute(
            f"CREATE OR REPLACE VIEW {UNIQUE_VIEW} AS "
            f"SELECT * FROM {ARCHIVE_TABLE_NAME} "
            "QUALIFY row_number() OVER ("
            "PARTITION BY dead_letter_id ORDER BY failed_at, dt) = 1"
        )

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> QueryResult:
        """Run one statement with positional ``?`` parameters."""
        try:
            cursor = self._connection.execute(sql, list(parameters))
            description = cursor.description or []
            rows = cursor.fetchall() if description else []
        except duckdb.Error as error:
            raise ArchiveQueryError(str(error)) from error
        return QueryResult(tuple(column[0] for column in description), rows)

    def run_named(self, query: NamedQuery, arguments: Sequence[str]) -> QueryResult:
        """Run a named query with one argument per declared parameter.

        Raises:
            ArchiveQueryError: When the number of arguments is wrong.
        """
        if len(arguments) != len(query.parameters):
            expected = ", ".join(query.parameters) or "none"
            raise ArchiveQueryError(
                f"{query.name} takes {len(query.parameters)} arguments "
                f"({expected}), got {len(arguments)}"
            )
        return self.execute(query.sql, arguments)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> ArchiveDatabase:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _load_httpfs(self) -> None:
        installed = self._connection.execute(
            "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
        ).fetchone()
        if not (installed and installed[0]):
            self._connection.execute(f"INSTALL {_literal(str(_httpfs_file()))}")
        self._connection.execute("LOAD httpfs")

    def _secret_statement(self) -> str:
        endpoint = urlsplit(self._location.endpoint_url)
        options = {
            "TYPE": "s3",
            "KEY_ID": _literal(self._location.access_key_id),
            "SECRET": _literal(self._location.secret_access_key),
            "REGION": _literal(self._location.region),
            "ENDPOINT": _literal(endpoint.netloc),
            "URL_STYLE": "'path'",
            "USE_SSL": "true" if endpoint.scheme == "https" else "false",
        }
        body = ", ".join(f"{name} {value}" for name, value in options.items())
        return f"CREATE OR REPLACE SECRET archive_s3 ({body})"

    def _has_objects(self) -> bool:
        row = self._connection.execute(
            "SELECT count(*) FROM glob(?)", [self.objects_pattern]
        ).fetchone()
        return bool(row and row[0])

    def _archive_select(self) -> str:
        columns = ", ".join(
            f"{_literal(column.name)}: {_literal(duckdb_type(column.type))}"
            for column in envelope_glue_columns()
        )
        partition = self._layout.partition_column
        return (
            f"SELECT * FROM read_json({_literal(self.objects_pattern)}, "
            "format = 'newline_delimited', "
            f"columns = {{{columns}}}, "
            "hive_partitioning = true, "
            f"hive_types = {{{_literal(partition)}: 'VARCHAR'}})"
        )

    def _empty_select(self) -> str:
        columns = [
            f"CAST(NULL AS {duckdb_type(column.type)}) AS {column.name}"
            for column in envelope_glue_columns()
        ]
        columns.append(f"CAST(NULL AS VARCHAR) AS {self._layout.partition_column}")
        return f"SELECT {', '.join(columns)} WHERE false"


def duckdb_type(hive_type: str) -> str:
    """Translate a Glue (Hive) column type into DuckDB's type syntax.

    ``array<struct<key:string,value:string>>`` becomes
    ``STRUCT(key VARCHAR, value VARCHAR)[]``.

    Raises:
        ValueError: For a type this archive does not use.
    """
    text = hive_type.strip()
    lowered = text.lower()
    if lowered in _SCALAR_TYPES:
        return _SCALAR_TYPES[lowered]
    if lowered.startswith("array<") and text.endswith(">"):
        return f"{duckdb_type(text[len('array<') : -1])}[]"
    if lowered.startswith("struct<") and text.endswith(">"):
        fields = []
        for field in _split_top_level(text[len("struct<") : -1]):
            name, separator, field_type = field.partition(":")
            if not separator:
                raise ValueError(f"struct field without a type: {field!r}")
            fields.append(f"{name.strip()} {duckdb_type(field_type)}")
        return f"STRUCT({', '.join(fields)})"
    raise ValueError(f"no DuckDB type for Hive type {hive_type!r}")


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, character in enumerate(text):
        if character == "<":
            depth += 1
        elif character == ">":
            depth -= 1
        elif character == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _httpfs_file() -> Path:
    # The wheel installs duckdb_ext/extensions/v<version>/<platform>/ as a
    # namespace package, with no module to import.
    spec = importlib.util.find_spec("duckdb_ext")
    locations = list(spec.submodule_search_locations or []) if spec else []
    platform = duckdb.execute("PRAGMA platform").fetchone()
    version = f"v{duckdb.__version__}"
    for location in locations:
        candidate = (
            Path(location)
            / "extensions"
            / version
            / str(platform[0] if platform else "")
            / "httpfs.duckdb_extension"
        )
        if candidate.is_file():
            return candidate
    raise ArchiveQueryError(
        f"the httpfs extension for DuckDB {version} is not installed; "
        f"install duckdb-ext-httpfs=={duckdb.__version__}.*"
    )
