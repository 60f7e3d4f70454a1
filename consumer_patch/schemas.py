"""The JSON Schemas of ``schemas/`` and validators built from them.

Two validators per schema: a generated one (fastjsonschema, about 17 times
faster) decides valid or not on the hot path, and jsonschema's Draft 2020-12
validator explains a failure. The keywords our schemas use mean the same in
both, and a differential test keeps them in agreement.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator, FormatChecker

AGENT_ACTION_SCHEMA = "agent-action.v1.schema.json"
ENVELOPE_SCHEMA = "dead-letter-envelope.v1.schema.json"


def schema_dir() -> Path:
    """Where the schemas are: the repo's ``schemas/`` or the wheel's copy."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "schemas", package / "_schemas"):
        if (candidate / ENVELOPE_SCHEMA).is_file():
            return candidate
    raise FileNotFoundError(f"no {ENVELOPE_SCHEMA} beside {package}")


@cache
def load_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((schema_dir() / name).read_text())
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    """A Draft 2020-12 validator that also checks ``format`` (date-time, uuid)."""
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


@cache
def _generated(name: str) -> Any:
    return fastjsonschema.compile(load_schema(name))


def prepare_validators() -> None:
    """Build every validator now (about 50 ms) rather than on the first
    record and the first dead letter, which would otherwise wait for it."""
    for name in (AGENT_ACTION_SCHEMA, ENVELOPE_SCHEMA):
        _generated(name)
        validator(name)


def check(name: str, instance: object) -> str | None:
    """None when ``instance`` is valid, else its most relevant error as a line."""
    try:
        _generated(name)(instance)
    except fastjsonschema.JsonSchemaException as error:
        return first_error(name, instance) or str(error)
    return None


def first_error(name: str, instance: object) -> str | None:
    """The most relevant validation error as one readable line, or None."""
    errors = sorted(
        validator(name).iter_errors(instance), key=lambda e: (len(e.path), e.message)
    )
    if not errors:
        return None
    error = errors[0]
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"
