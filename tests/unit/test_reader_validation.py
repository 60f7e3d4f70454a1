"""Validating a scanned dead letter: the scan's parse is reused, never trusted."""

from __future__ import annotations

import json
from pathlib import Path

from consumer_patch.operator.reader import (
    DeadLetterRecord,
    RawRecord,
    as_dead_letter,
    validated,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas/examples/dead-letter-envelope"


def _scanned(value: bytes) -> DeadLetterRecord:
    return as_dead_letter("dlq", RawRecord(0, 7, 0, None, value, ()))


def _valid_value() -> bytes:
    return sorted((EXAMPLES / "valid").glob("*.json"))[0].read_bytes()


def test_a_valid_scanned_envelope_is_kept_without_parsing_again() -> None:
    letter = _scanned(_valid_value())

    checked = validated(letter)

    assert checked is letter
    assert checked.envelope == json.loads(_valid_value())


def test_an_envelope_the_scan_accepts_but_the_schema_refuses_is_marked() -> None:
    envelope = {**json.loads(_valid_value()), "unexpected": True}
    letter = _scanned(json.dumps(envelope).encode())
    assert letter.envelope is not None

    checked = validated(letter)

    assert checked.envelope is None
    assert checked.problem is not None
    assert "dead letter dlq-0@7 is not a valid envelope" in checked.problem


def test_a_value_the_scan_refuses_gets_the_strict_reason() -> None:
    checked = validated(_scanned(b"garbage"))

    assert checked.envelope is None
    assert checked.problem is not None
    assert "is not JSON" in checked.problem
