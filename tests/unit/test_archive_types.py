"""Glue column types become DuckDB types, so the local table matches Athena's."""

from __future__ import annotations

import pytest

from consumer_patch.archive.query import duckdb_type
from consumer_patch.connector import envelope_glue_columns


def test_nested_header_array_becomes_a_list_of_structs() -> None:
    assert (
        duckdb_type("array<struct<key:string,value:string,encoding:string>>")
        == "STRUCT(key VARCHAR, value VARCHAR, encoding VARCHAR)[]"
    )


def test_every_envelope_column_has_a_duckdb_type() -> None:
    types = {
        column.name: duckdb_type(column.type) for column in envelope_glue_columns()
    }

    assert types["original_offset"] == "BIGINT"
    assert types["error_message_truncated"] == "BOOLEAN"
    assert types["failed_at"] == "VARCHAR"


def test_struct_inside_struct_splits_fields_at_the_top_level() -> None:
    assert (
        duckdb_type("struct<a:struct<b:bigint,c:double>,d:boolean>")
        == "STRUCT(a STRUCT(b BIGINT, c DOUBLE), d BOOLEAN)"
    )


@pytest.mark.parametrize("hive_type", ["map<string,string>", "decimal(10,2)", ""])
def test_types_the_archive_does_not_use_are_refused(hive_type: str) -> None:
    with pytest.raises(ValueError, match="no DuckDB type"):
        duckdb_type(hive_type)
