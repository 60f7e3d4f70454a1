"""The redrive worker parks what must not go back and waits for what is not due."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from consumer_patch.redrive import decide, redrive_delay
from consumer_patch.settings import load_settings

SETTINGS = load_settings(
    kafka_max_attempts=5, kafka_redrive_delay_ms=1000, kafka_redrive_max_delay_ms=8000
)
FAILED_AT = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


def _envelope(**fields: Any) -> dict[str, Any]:
    base = {
        "error_category": "transient",
        "original_topic": "agent-actions",
        "retry_count": 2,
        "failed_at": FAILED_AT.isoformat().replace("+00:00", "Z"),
    }
    base.update(fields)
    return base


def test_redrive_delay_doubles_per_attempt_up_to_the_cap() -> None:
    delays = [redrive_delay(n, 1.0, 8.0) for n in range(1, 7)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"error_category": "permanent"}, "permanent"),
        ({"retry_count": 5}, "exhausted"),
        ({"retry_count": 9}, "exhausted"),
        ({"original_topic": "agent-actions-dlq"}, "loop_to_dead_letter_topic"),
    ],
)
def test_parks_what_must_not_go_back(fields: dict[str, Any], reason: str) -> None:
    decision = decide(_envelope(**fields), FAILED_AT.timestamp() + 3600, SETTINGS)

    assert (decision.action, decision.reason) == ("park", reason)


def test_invalid_envelope_is_parked() -> None:
    assert decide(None, 0.0, SETTINGS).action == "park"


def test_transient_dead_letter_waits_for_its_delay_then_goes_back() -> None:
    due = FAILED_AT.timestamp() + 2.0  # retry_count 2: base * 2

    early = decide(_envelope(), due - 0.01, SETTINGS)
    on_time = decide(_envelope(), due, SETTINGS)
    unknown = decide(_envelope(error_category="unknown"), due, SETTINGS)

    assert (early.action, early.due_at) == ("wait", due)
    assert on_time.action == "redrive"
    assert unknown.action == "redrive"
