"""What operators type is parsed exactly, and filters match exactly (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consumer_patch.errors import SettingsError
from consumer_patch.operator.errors import SelectionError
from consumer_patch.operator.selection import (
    OffsetRange,
    Position,
    Selection,
    parse_moment,
    parse_offset_range,
    parse_position,
)
from consumer_patch.settings import load_settings

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2026-04-30", datetime(2026, 4, 30, tzinfo=UTC)),
        ("2026-04-30T10:00:00Z", datetime(2026, 4, 30, 10, tzinfo=UTC)),
        ("2026-04-30T12:00:00+02:00", datetime(2026, 4, 30, 10, tzinfo=UTC)),
    ],
)
def test_times_are_durations_back_from_now_or_iso_dates(
    text: str, expected: datetime
) -> None:
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["2x", "h", "-2h", "yesterday", "2026-13-01", ""])
def test_unreadable_times_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(SelectionError, match="30m, 2h or 7d"):
        parse_moment(text, NOW)


def test_positions_take_both_the_list_form_and_the_pointer_form() -> None:
    assert parse_position("1:42") == (None, Position(1, 42))
    assert parse_position("agent-actions-dlq-2@7") == (
        "agent-actions-dlq",
        Position(2, 7),
    )
    for text in ("abc", "1:", ":4", "1:-4", "dlq@4"):
        with pytest.raises(SelectionError, match="PARTITION:OFFSET"):
            parse_position(text)


def test_offset_ranges_include_both_ends_and_may_be_open() -> None:
    assert parse_offset_range("5") == OffsetRange(5, 5)
    assert parse_offset_range("3-9") == OffsetRange(3, 9)
    assert parse_offset_range("3-") == OffsetRange(3, None)
    assert parse_offset_range("-9") == OffsetRange(None, 9)
    assert 3 in OffsetRange(3, 9)
    assert 9 in OffsetRange(3, 9)
    assert 2 not in OffsetRange(3, 9)
    assert 10 not in OffsetRange(3, 9)
    for text in ("-", "9-3", "a-b", "1..2"):
        with pytest.raises(SelectionError):
            parse_offset_range(text)


def _envelope(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "error_type": "ValidationError",
        "error_category": "permanent",
        "original_topic": "agent-actions",
        "correlation_id": "c-1",
        "original_partition": 2,
        "original_offset": 40,
        "failed_at": "2026-05-01T11:00:00.000Z",
    }
    base.update(fields)
    return base


def test_every_filter_must_match_and_repeats_are_alternatives() -> None:
    selection = Selection(
        error_types=frozenset({"ValidationError", "NotJSONError"}),
        categories=frozenset({"permanent"}),
        original_partitions=frozenset({2}),
        original_offsets=OffsetRange(40, 41),
    )

    assert selection.matches(_envelope())
    assert selection.matches(_envelope(error_type="NotJSONError"))
    assert not selection.matches(_envelope(error_type="NullValueError"))
    assert not selection.matches(_envelope(error_category="transient"))
    assert not selection.matches(_envelope(original_partition=1))
    assert not selection.matches(_envelope(original_offset=42))
    assert Selection().matches(_envelope())
    assert Selection().is_everything
    assert not selection.is_everything


def test_time_window_includes_since_and_excludes_until() -> None:
    at = datetime(2026, 5, 1, 11, 0, tzinfo=UTC)
    window = Selection(since=at, until=at + timedelta(minutes=1))

    assert window.matches(_envelope(failed_at="2026-05-01T11:00:00.000Z"))
    assert window.matches(_envelope(failed_at="2026-05-01T11:00:59.999Z"))
    assert not window.matches(_envelope(failed_at="2026-05-01T11:01:00.000Z"))
    assert not window.matches(_envelope(failed_at="2026-05-01T10:59:59.999Z"))


def test_positions_on_the_dead_letter_topic_filter_by_partition_and_offset() -> None:
    selection = Selection(partitions=frozenset({1}), offsets=OffsetRange(10, 20))

    assert selection.wants_position(1, 10)
    assert selection.wants_position(1, 20)
    assert not selection.wants_position(1, 21)
    assert not selection.wants_position(0, 15)


def test_replay_allow_list_defaults_to_the_source_topic_and_refuses_the_dlq(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KAFKA_REPLAY_ALLOWED_TOPICS", raising=False)
    settings = load_settings(kafka_topic="actions", kafka_dlq_topic="actions-dlq")

    assert settings.replay_allowed_topics == {"actions"}
    assert settings.replay_ledger_topic == "actions-dlq-replay-ledger"
    assert load_settings(
        kafka_replay_allowed_topics="a, b,", kafka_dlq_topic="x-dlq"
    ).replay_allowed_topics == {"a", "b"}
    with pytest.raises(SettingsError, match="KAFKA_REPLAY_ALLOWED_TOPICS"):
        load_settings(
            kafka_replay_allowed_topics="actions,x-dlq", kafka_dlq_topic="x-dlq"
        )
    with pytest.raises(SettingsError, match="KAFKA_REPLAY_ALLOWED_TOPICS"):
        load_settings(kafka_replay_allowed_topics="bad name")
    with pytest.raises(SettingsError, match="KAFKA_DLQ_TRIAGE_GROUP"):
        load_settings(kafka_dlq_triage_group="g", kafka_group_id="g")
    with pytest.raises(SettingsError, match="KAFKA_DLQ_ALERT_WEBHOOK_URL"):
        load_settings(kafka_dlq_alert_webhook_url="ftp://example")
