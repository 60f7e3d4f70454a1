"""The archive's named queries for Athena: the SQL files of ``infra/sql/``.

The parser lives in :mod:`consumer_patch.archive.named_queries` so that the
local runner (``agent-dlq archive queries``, DuckDB over the local S3
endpoint) reads the very same files; see there for the file format.

This module has no Pulumi dependency.
"""

from __future__ import annotations

from pathlib import Path

from consumer_patch.archive.named_queries import NamedQuery, named_queries

__all__ = ["SQL_DIRECTORY", "NamedQuery", "named_queries"]

SQL_DIRECTORY = Path(__file__).resolve().parent / "sql"
