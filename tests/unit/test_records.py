"""Each way a record can fail to be an agent action has its own error type."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from consumer_patch.errors import (
    NotJSONError,
    NotUTF8Error,
    NullValueError,
    RecordError,
    ValidationError,
)
from consumer_patch.records import decode_action
from tests.support.kafka_io import action


@dataclass
class Record:
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    topic: str = "agent-actions"
    partition: int = 0
    offset: int = 0
    timestamp: int | None = 0


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, NullValueError),
        (b"\xff\xfe\x00", NotUTF8Error),
        (b"{not json", NotJSONError),
        (b"", NotJSONError),
        (b"[1, 2]", ValidationError),
        (json.dumps(action("c", duration_ms=-1)).encode(), ValidationError),
        (json.dumps(action("c", timestamp="yesterday")).encode(), ValidationError),
        (json.dumps({"correlation_id": "c"}).encode(), ValidationError),
    ],
)
def test_bad_record_raises_the_error_that_names_its_failure(
    value: bytes | None, error: type[RecordError]
) -> None:
    with pytest.raises(error):
        decode_action(Record(value))


def test_valid_action_is_decoded_with_an_aware_timestamp() -> None:
    decoded = decode_action(Record(json.dumps(action("c-1")).encode()))

    assert decoded.action["correlation_id"] == "c-1"
    assert decoded.timestamp.tzinfo is not None


def test_validation_message_names_the_field() -> None:
    with pytest.raises(ValidationError, match="duration_ms"):
        decode_action(Record(json.dumps(action("c", duration_ms=-1)).encode()))
