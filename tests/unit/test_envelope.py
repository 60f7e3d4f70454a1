"""Envelopes are valid for any record and give back the original bytes exactly."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer_patch.envelope import (
    TRUNCATION_MARK,
    Failure,
    build_envelope,
    decode_bytes,
    decode_headers,
    encode_bytes,
    scrub_secrets,
    serialize,
)
from consumer_patch.errors import EnvelopeError, ValidationError
from consumer_patch.schemas import ENVELOPE_SCHEMA, validator


@dataclass
class Record:
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    topic: str = "agent-actions"
    partition: int = 1
    offset: int = 42
    timestamp: int | None = 1_796_300_000_000


def _failure(error: BaseException | None = None) -> Failure:
    return Failure(error or ValidationError("bad"), "permanent", attempts=1)


def _envelope(record: Record, **kwargs: object) -> dict[str, object]:
    return build_envelope(
        record,
        _failure(),
        consumer_group="group",
        prior_attempts=0,
        **kwargs,  # type: ignore[arg-type]
    )


byte_strings = st.one_of(st.none(), st.binary(max_size=2048))
text_like = st.one_of(st.none(), st.text(max_size=256).map(str.encode))
header_lists = st.lists(
    st.tuples(st.text(max_size=20), st.one_of(st.none(), st.binary(max_size=64))),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(
    key=st.one_of(byte_strings, text_like),
    value=st.one_of(byte_strings, text_like),
    record_headers=header_lists,
)
def test_any_record_gives_a_valid_envelope_that_round_trips_exactly(
    key: bytes | None,
    value: bytes | None,
    record_headers: list[tuple[str, bytes | None]],
) -> None:
    record = Record(value=value, key=key, headers=record_headers)

    envelope = _envelope(record)
    reread = json.loads(serialize(envelope))

    assert validator(ENVELOPE_SCHEMA).is_valid(reread)
    assert decode_bytes(reread["original_key"], reread["original_key_encoding"]) == key
    assert (
        decode_bytes(reread["original_value"], reread["original_value_encoding"])
        == value
    )
    assert decode_headers(reread) == record_headers


def test_utf8_is_kept_as_text_and_other_bytes_as_base64() -> None:
    assert encode_bytes("héllo".encode()) == ("héllo", "utf8")
    assert encode_bytes(b"\xff\x00") == ("/wA=", "base64")
    assert encode_bytes(None) == (None, None)


def test_largest_source_record_fits_whole_and_error_text_is_cut_first() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB, not UTF-8: base64 grows it by a third
    record = Record(value=value)
    huge_error = ValidationError("x" * 500_000)
    failure = Failure(huge_error, "permanent", attempts=1)

    envelope = build_envelope(
        record, failure, consumer_group="g", prior_attempts=0, max_bytes=1_500_000
    )

    assert (
        decode_bytes(envelope["original_value"], envelope["original_value_encoding"])
        == value
    )
    assert envelope["error_message_truncated"] is True
    assert envelope["error_message"].endswith(TRUNCATION_MARK)
    assert len(serialize(envelope)) <= 1_500_000


def test_envelope_over_the_limit_even_without_error_text_is_refused() -> None:
    record = Record(value=b"v" * 10_000)

    with pytest.raises(EnvelopeError, match="over the 5000-byte limit"):
        _envelope(record, max_bytes=5_000)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect to postgresql://app:s3cr3t@db:5432/x failed", "s3cr3t"),
        ("dsn host=db password=hunter2 user=app", "hunter2"),
        ('{"api_key": "abcd1234efgh"}', "abcd1234efgh"),
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl", "eyJzdWIiOiIx"),
        ("token=ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghij"),
        ("aws AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("sasl_password: 'pa55word'", "pa55word"),
    ],
)
def test_secrets_are_scrubbed_from_error_text(text: str, secret: str) -> None:
    scrubbed = scrub_secrets(text)

    assert secret not in scrubbed
    assert "***" in scrubbed


def test_secrets_in_the_error_never_reach_the_envelope() -> None:
    try:
        raise ConnectionError("could not connect to postgresql://u:topsecret@h/db")
    except ConnectionError as error:
        failure = Failure(error, "transient", attempts=4)

    envelope = build_envelope(
        Record(value=b"{}"), failure, consumer_group="g", prior_attempts=2
    )

    assert "topsecret" not in json.dumps(envelope)
    assert envelope["error_traceback"] is not None
    assert envelope["retry_count"] == 6
    assert envelope["error_category"] == "transient"


def test_dead_letter_id_is_the_same_for_the_same_record_and_attempt() -> None:
    first = _envelope(Record(value=b"x"))
    again = _envelope(Record(value=b"x"))
    other = _envelope(Record(value=b"x", offset=43))

    assert first["dead_letter_id"] == again["dead_letter_id"]
    assert first["dead_letter_id"] != other["dead_letter_id"]


def test_correlation_id_comes_from_the_value_or_a_header() -> None:
    from_value = _envelope(Record(value=b'{"correlation_id": "c-9"}'))
    from_header = _envelope(Record(value=b"\xff", headers=[("correlation-id", b"c-7")]))
    unknown = _envelope(Record(value=None))

    assert from_value["correlation_id"] == "c-9"
    assert from_header["correlation_id"] == "c-7"
    assert unknown["correlation_id"] is None


def test_missing_record_timestamp_is_null() -> None:
    assert _envelope(Record(value=b"x", timestamp=-1))["original_timestamp"] is None
