"""Turn a Kafka record into an agent action, or say exactly why it cannot be one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from consumer_patch import headers
from consumer_patch.errors import (
    NotJSONError,
    NotUTF8Error,
    NullValueError,
    ValidationError,
)
from consumer_patch.schemas import AGENT_ACTION_SCHEMA, check

Headers = Sequence[tuple[str, bytes | None]]


class SourceRecord(Protocol):
    """What the consumer needs of a record (aiokafka's ConsumerRecord has it)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...


@dataclass(frozen=True)
class ActionRecord:
    """A source record whose value is a valid agent action."""

    record: SourceRecord
    action: dict[str, Any]
    timestamp: datetime = field(compare=False)

    @property
    def topic(self) -> str:
        return self.record.topic

    @property
    def partition(self) -> int:
        return self.record.partition

    @property
    def offset(self) -> int:
        return self.record.offset


def decode_action(record: SourceRecord) -> ActionRecord:
    """Decode and validate the record's value.

    Raises:
        NullValueError, NotUTF8Error, NotJSONError, ValidationError: the
            record can never become an agent action.
    """
    if record.value is None:
        raise NullValueError("record value is null")
    try:
        text = record.value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NotUTF8Error(
            f"record value is not UTF-8: {error.reason} at byte {error.start}"
        ) from None
    try:
        action = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotJSONError(
            f"record value is not JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}"
        ) from None

    problem = check(AGENT_ACTION_SCHEMA, action)
    if problem is not None:
        raise ValidationError(f"not a valid agent action: {problem}")
    return ActionRecord(record, action, _parse_timestamp(action["timestamp"]))


def correlation_id_of(record: SourceRecord) -> str | None:
    """The record's correlation id, from its value when readable, else a header."""
    try:
        value = json.loads(record.value) if record.value is not None else None
    except (ValueError, UnicodeDecodeError):
        value = None
    if isinstance(value, dict) and isinstance(value.get("correlation_id"), str):
        found: str = value["correlation_id"]
        return found
    for name in headers.CORRELATION_ID_HEADERS:
        for key, raw in record.headers:
            if key == name and raw is not None:
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError:
                    return None
    return None


def _parse_timestamp(text: str) -> datetime:
    # The schema's date-time format has already accepted the text (RFC 3339);
    # "Z" is spelled out for Python < 3.11 compatibility of fromisoformat.
    try:
        parsed = datetime.fromisoformat(
            text.replace("Z", "+00:00").replace("z", "+00:00")
        )
    except ValueError as error:
        raise ValidationError(f"timestamp: {error}") from None
    if parsed.tzinfo is None:
        raise ValidationError("timestamp: a time zone is required")
    return parsed
