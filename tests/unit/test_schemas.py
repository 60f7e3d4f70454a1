"""The schemas are valid Draft 2020-12; each example is judged as its folder says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from consumer_patch.schemas import (
    AGENT_ACTION_SCHEMA,
    ENVELOPE_SCHEMA,
    check,
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


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
timestamps = st.sampled_from(
    [
        "2026-12-03T10:15:30Z",
        "2026-12-03T10:15:30.123+01:00",
        "2026-12-03t10:15:30z",
        "2026-12-03 10:15:30Z",
        "2026-12-03T10:15:30",
        "2026-13-03T10:15:30Z",
        "2026-12-03T25:15:30Z",
        "yesterday",
        "",
    ]
)
actions = st.fixed_dictionaries(
    {},
    optional={
        "correlation_id": st.text(max_size=3) | json_values,
        "agent_name": st.text(max_size=3) | json_values,
        "action_type": st.text(max_size=3),
        "action_name": st.text(max_size=3),
        "action_details": json_values,
        "debug_mode": st.booleans() | json_values,
        "duration_ms": st.integers(min_value=-5, max_value=2**64) | json_values,
        "timestamp": timestamps | json_values,
    },
)


@settings(max_examples=500, deadline=None)
@given(instance=actions | json_values)
def test_fast_and_reference_validators_agree_on_agent_actions(instance: object) -> None:
    fast_says_valid = check(AGENT_ACTION_SCHEMA, instance) is None

    assert fast_says_valid == validator(AGENT_ACTION_SCHEMA).is_valid(instance)


@pytest.mark.parametrize(("schema", "path"), _examples("valid") + _examples("invalid"))
def test_fast_and_reference_validators_agree_on_every_example(
    schema: str, path: Path
) -> None:
    instance = json.loads(path.read_text())

    assert (check(schema, instance) is None) == validator(schema).is_valid(instance)
