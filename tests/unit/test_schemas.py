"""The schemas are valid Draft 2020-12; each example is judged as its folder says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from consumer_patch.schemas import (
    AGENT_ACTION_SCHEMA,
    ENVELOPE_SCHEMA,
    schema_dir,
    validator,
)

SCHEMAS = {"agent-action": AGENT_ACTION_SCHEMA, "dead-letter-envelope": ENVELOPE_SCHEMA}


def _examples(verdict: str) -> list[tuple[str, Path]]:
    found = [
        (schema, path)
        for folder, schema in SCHEMAS.items()
        for path in sorted(
            (schema_dir() / "examples" / folder / verdict).glob("*.json")
        )
    ]
    assert found, f"no {verdict} examples found"
    return found


@pytest.mark.parametrize("name", sorted(SCHEMAS.values()))
def test_schema_is_valid_against_the_draft_2020_12_meta_schema(name: str) -> None:
    schema = json.loads((schema_dir() / name).read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(("schema", "path"), _examples("valid"), ids=lambda v: str(v))
def test_valid_example_passes_its_schema(schema: str, path: Path) -> None:
    errors = list(validator(schema).iter_errors(json.loads(path.read_text())))
    assert errors == [], f"{path.name}: {[e.message for e in errors]}"


@pytest.mark.parametrize(("schema", "path"), _examples("invalid"), ids=lambda v: str(v))
def test_invalid_example_fails_its_schema(schema: str, path: Path) -> None:
    assert not validator(schema).is_valid(json.loads(path.read_text())), path.name


def test_every_schema_has_valid_and_invalid_examples() -> None:
    for folder in SCHEMAS:
        for verdict in ("valid", "invalid"):
            assert list((schema_dir() / "examples" / folder / verdict).glob("*.json"))
