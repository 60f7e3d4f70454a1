"""The dead-letter envelope (schema ``dead-letter-envelope.v1``).

``build_envelope`` is total: any record, with any key, value and header bytes,
becomes a valid envelope or an ``EnvelopeError`` that says why (the only case
is an envelope over the size limit even with the error text cut to nothing).

Note:
    The original bytes are never altered. When the envelope is too large, the
    error message and traceback are cut first (and marked truncated); the
    original key, value and headers are written whole or not at all.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from consumer_patch.errors import EnvelopeError, RecordError
from consumer_patch.records import Headers, SourceRecord, correlation_id_of
from consumer_patch.schemas import ENVELOPE_SCHEMA, check

SCHEMA_VERSION = 1
MAX_ERROR_MESSAGE_CHARS = 8_192
MAX_TRACEBACK_CHARS = 32_768
TRUNCATION_MARK = "…[truncated]"

# Dead letters of the same source record, group and attempt count get the
# same id, so a dead letter written twice (crash before the offset commit in
# non-transactional mode) can be recognised as one by archive readers.
DEAD_LETTER_NAMESPACE = uuid.UUID("6f1d8c2e-52a4-4bb4-9b0f-5d3e0f1c9a77")

Encoding = Literal["utf8", "base64"]
ErrorCategory = Literal["transient", "permanent", "unknown"]


def encode_bytes(data: bytes | None) -> tuple[str | None, Encoding | None]:
    """Bytes as JSON-safe text: UTF-8 text as is, anything else base64."""
    if data is None:
        return None, None
    try:
        return data.decode("utf-8"), "utf8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def decode_bytes(text: str | None, encoding: str | None) -> bytes | None:
    """Inverse of ``encode_bytes``: the exact original bytes."""
    if text is None:
        return None
    if encoding == "utf8":
        return text.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise EnvelopeError(f"invalid base64 in envelope: {error}") from None
    raise EnvelopeError(f"unknown encoding {encoding!r} in envelope")


# Secrets that exception texts are known to carry: passwords in connection
# URLs (asyncpg and libpq put the DSN in some messages), key=value secrets,
# bearer tokens and well-known token shapes.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^\s:/@]*:)[^\s@/]*(?P<tail>@)"),
        r"\g<head>***\g<tail>",
    ),
    (
        re.compile(
            r"(?i)(?P<head>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
            r"secret[_-]?access[_-]?key|sasl[_-]?password|authorization)\b[\"']?\s*[:=]\s*[\"']?)"
            r"(?:bearer\s+|basic\s+)?[^\s\"',;&)]+"
        ),
        r"\g<head>***",
    ),
    (re.compile(r"(?i)\bbearer\s+[a-z0-9._~+/-]+=*"), "Bearer ***"),
    (re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}"), "***"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "***"),
    (
        re.compile(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|xox[abpr]-[\w-]{10,})"
        ),
        "***",
    ),
)


def scrub_secrets(text: str) -> str:
    """Replace passwords and token-like secrets in ``text`` with ``***``."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text, False
    keep = max(0, limit - len(TRUNCATION_MARK))
    return text[:keep] + TRUNCATION_MARK, True


@dataclass(frozen=True)
class Failure:
    """Why a record is being dead-lettered."""

    error: BaseException
    category: ErrorCategory
    attempts: int

    @property
    def error_type(self) -> str:
        return type(self.error).__name__


def build_envelope(
    record: SourceRecord,
    failure: Failure,
    *,
    consumer_group: str,
    prior_attempts: int,
    max_bytes: int | None = None,
    failed_at: datetime | None = None,
) -> dict[str, Any]:
    """Build and validate the envelope for ``record`` (see ``build_dead_letter``)."""
    envelope, _serialized = build_dead_letter(
        record,
        failure,
        consumer_group=consumer_group,
        prior_attempts=prior_attempts,
        max_bytes=max_bytes,
        failed_at=failed_at,
    )
    return envelope


def build_dead_letter(
    record: SourceRecord,
    failure: Failure,
    *,
    consumer_group: str,
    prior_attempts: int,
    max_bytes: int | None = None,
    failed_at: datetime | None = None,
) -> tuple[dict[str, Any], bytes]:
    """Build and validate the envelope for ``record``; return it and its bytes.

    Args:
        prior_attempts: attempts made before this delivery (the source
            record's retry-count header); ``failure.attempts`` is added to it.
        max_bytes: largest serialized envelope allowed; error text is cut
            down to fit before giving up.

    Raises:
        EnvelopeError: the envelope does not fit in ``max_bytes`` even without
            error text, or it fails its schema (a bug, never the record's).
    """
    key, key_encoding = encode_bytes(record.key)
    value, value_encoding = encode_bytes(record.value)
    retry_count = prior_attempts + failure.attempts
    message = scrub_secrets(_message_of(failure.error))
    trace = scrub_secrets(_traceback_of(failure.error))

    envelope: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "dead_letter_id": str(
            uuid.uuid5(
                DEAD_LETTER_NAMESPACE,
                f"{consumer_group}|{record.topic}|{record.partition}|"
                f"{record.offset}|{retry_count}",
            )
        ),
        "correlation_id": correlation_id_of(record),
        "original_topic": record.topic,
        "original_partition": record.partition,
        "original_offset": record.offset,
        "original_timestamp": _timestamp_of(record),
        "original_key": key,
        "original_key_encoding": key_encoding,
        "original_value": value,
        "original_value_encoding": value_encoding,
        "original_headers": encode_headers(record.headers),
        "error_type": failure.error_type,
        "error_category": failure.category,
        "retry_count": retry_count,
        "failed_at": _rfc3339(failed_at or datetime.now(UTC)),
        "consumer_group": consumer_group,
    }
    serialized = _fit_error_text(envelope, message, trace, max_bytes)

    problem = check(ENVELOPE_SCHEMA, envelope)
    if problem is not None:
        raise EnvelopeError(f"envelope for {_name(record)} is invalid: {problem}")
    return envelope, serialized


def serialize(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def encode_headers(record_headers: Headers) -> list[dict[str, str | None]]:
    encoded: list[dict[str, str | None]] = []
    for name, raw in record_headers:
        text, encoding = encode_bytes(raw)
        encoded.append({"key": name, "value": text, "encoding": encoding})
    return encoded


def decode_headers(envelope: dict[str, Any]) -> list[tuple[str, bytes | None]]:
    return [
        (header["key"], decode_bytes(header["value"], header["encoding"]))
        for header in envelope["original_headers"]
    ]


def _fit_error_text(
    envelope: dict[str, Any], message: str, trace: str, max_bytes: int | None
) -> bytes:
    limits = [
        (MAX_ERROR_MESSAGE_CHARS, MAX_TRACEBACK_CHARS),
        (1_024, 2_048),
        (256, 0),
        (0, 0),
    ]
    for message_limit, trace_limit in limits:
        envelope["error_message"], envelope["error_message_truncated"] = truncate(
            message, message_limit
        )
        cut_trace, trace_truncated = truncate(trace, trace_limit)
        envelope["error_traceback"] = cut_trace if trace else None
        envelope["error_traceback_truncated"] = trace_truncated
        serialized = serialize(envelope)
        if max_bytes is None or len(serialized) <= max_bytes:
            return serialized
    raise EnvelopeError(
        f"envelope of {envelope['original_topic']}-{envelope['original_partition']}"
        f"@{envelope['original_offset']} is {len(serialized)} bytes, over the "
        f"{max_bytes}-byte limit even without error text; raise "
        "KAFKA_DLQ_MAX_MESSAGE_BYTES and the topic's max.message.bytes"
    )


def _message_of(error: BaseException) -> str:
    text = str(error)
    return text if text else type(error).__name__


def _traceback_of(error: BaseException) -> str:
    # A record that cannot be decoded fails in this package's own decoder,
    # always in the same frames; its message says all, so it gets no
    # traceback (formatting one is most of the cost of a dead letter).
    if error.__traceback__ is None or isinstance(error, RecordError):
        return ""
    return "".join(traceback.format_exception(error))


def _timestamp_of(record: SourceRecord) -> int | None:
    # Kafka uses -1 for "no timestamp" (records from pre-0.10 producers).
    timestamp = record.timestamp
    return timestamp if timestamp is not None and timestamp >= 0 else None


def _rfc3339(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _name(record: SourceRecord) -> str:
    return f"{record.topic}-{record.partition}@{record.offset}"
