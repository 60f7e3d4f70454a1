"""Turn a dead letter back into the source record it came from.

Replay (operators) and redrive (automatic) both send the original key, value
and headers back to a topic. The record they send carries two headers of
ours: the retry count, so the consumer keeps counting attempts across
replays, and a pointer to the dead letter it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from consumer_patch import headers
from consumer_patch.envelope import decode_bytes, decode_headers
from consumer_patch.errors import EnvelopeError
from consumer_patch.schemas import ENVELOPE_SCHEMA, check


@dataclass(frozen=True)
class DeadLetterPosition:
    """Where a dead letter sits on the dead-letter topic."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}@{self.offset}"


@dataclass(frozen=True)
class RepublishRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def parse_envelope(value: bytes | None, position: DeadLetterPosition) -> dict[str, Any]:
    """Parse and validate a dead-letter record's value.

    Raises:
        EnvelopeError: the value is not a valid envelope (names the position).
    """
    if value is None:
        raise EnvelopeError(f"dead letter {position} has a null value")
    try:
        envelope: dict[str, Any] = json.loads(value)
    except ValueError as error:
        raise EnvelopeError(f"dead letter {position} is not JSON: {error}") from None
    check_envelope(envelope, position)
    return envelope


def check_envelope(envelope: object, position: DeadLetterPosition) -> None:
    """Validate an already parsed envelope against the envelope schema.

    Raises:
        EnvelopeError: it is not a valid envelope (names the position).
    """
    problem = check(ENVELOPE_SCHEMA, envelope)
    if problem is not None:
        raise EnvelopeError(
            f"dead letter {position} is not a valid envelope: {problem}"
        )


def republish_record(
    envelope: dict[str, Any],
    position: DeadLetterPosition,
    target_topic: str | None = None,
) -> RepublishRecord:
    """The record to send so the original is processed again.

    The original headers are kept in order, except our own, which are
    replaced: the retry count becomes the envelope's ``retry_count`` (the
    attempts made so far) and ``replayed-from`` names the dead letter.
    """
    original_headers = [
        (name, raw if raw is not None else b"")
        for name, raw in decode_headers(envelope)
        if not headers.is_ours(name)
    ]
    ours = [
        (headers.RETRY_COUNT, str(envelope["retry_count"]).encode()),
        (headers.REPLAYED_FROM, str(position).encode()),
    ]
    return RepublishRecord(
        topic=target_topic or envelope["original_topic"],
        key=decode_bytes(envelope["original_key"], envelope["original_key_encoding"]),
        value=decode_bytes(
            envelope["original_value"], envelope["original_value_encoding"]
        ),
        headers=original_headers + ours,
    )
