"""The local query path works on an empty archive and speaks Athena's dialect."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from consumer_patch.archive.query import ArchiveDatabase
from consumer_patch.archive.s3 import ENDPOINT_VARIABLE, S3Location
from consumer_patch.cli.main import main
from consumer_patch.connector import ArchiveLayout, envelope_glue_columns
from tests.conftest import ArchiveServices


def test_empty_archive_has_the_glue_columns_and_no_rows(
    archive_services: ArchiveServices, unique: Callable[[str], str]
) -> None:
    location = S3Location.from_environment(archive_services.s3_environment)
    layout = ArchiveLayout(prefix=unique("empty"))

    with ArchiveDatabase(location, layout) as database:
        columns = database.execute("DESCRIBE agent_actions_dlq").rows
        count = database.execute("SELECT count(*) FROM agent_actions_dlq").rows
        unique_columns = database.execute("DESCRIBE agent_actions_dlq_unique").rows

    names = [row[0] for row in columns]
    assert names == [column.name for column in envelope_glue_columns()] + ["dt"]
    assert count == [(0,)]
    assert [row[0] for row in unique_columns] == names


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ('{"agent_name": "planner"}', "planner"),
        ('{"agent_name": 7}', "7"),
        ('{"agent_name": {"first": "x"}}', None),
        ('{"other": 1}', None),
        ("not json", None),
        (None, None),
    ],
)
def test_json_extract_scalar_behaves_like_athena(
    archive_services: ArchiveServices,
    unique: Callable[[str], str],
    document: str | None,
    expected: str | None,
) -> None:
    location = S3Location.from_environment(archive_services.s3_environment)

    with ArchiveDatabase(location, ArchiveLayout(prefix=unique("dialect"))) as database:
        rows = database.execute(
            "SELECT json_extract_scalar(CAST(? AS VARCHAR), '$.agent_name')",
            [document],
        ).rows

    assert rows == [(expected,)]


def test_cli_lists_the_named_queries_and_runs_sql(
    archive_services: ArchiveServices,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in archive_services.s3_environment.items():
        monkeypatch.setenv(name, value)
    assert ENDPOINT_VARIABLE in archive_services.s3_environment

    assert main(["archive", "queries", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert (
        main(
            [
                "archive",
                "query",
                "SELECT count(*) AS n FROM agent_actions_dlq",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert main(["archive", "queries", "top-failing-agents", "2026-12-01"]) == 1

    assert [query["name"] for query in listed["queries"]] == [
        "dead-letters-by-correlation-id",
        "dead-letters-by-error-type",
        "top-failing-agents",
    ]
    assert result["columns"] == ["n"]
    assert "takes 2 arguments" in capsys.readouterr().err
