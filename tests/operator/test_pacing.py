"""The rate limiter holds --rate over time, and stats fold records exactly."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from consumer_patch.operator.pacing import Progress, RateLimiter
from consumer_patch.operator.reader import DeadLetterRecord
from consumer_patch.operator.stats import summarize


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _drain(limiter: RateLimiter, clock: FakeClock, permits: int) -> float:
    started = clock.now
    for _ in range(permits):
        while (wait := limiter.delay()) > 0:
            clock.now += wait
    return clock.now - started


def test_rate_limit_spaces_permits_at_the_rate_after_a_small_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50, clock)

    elapsed = _drain(limiter, clock, 505)

    # 5 permits of burst (a tenth of a second), then 500 at 50 a second.
    assert abs(elapsed - 10.0) < 1e-6


def test_slow_rates_allow_one_permit_at_a_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.5, clock)

    assert _drain(limiter, clock, 1) == 0
    assert abs(_drain(limiter, clock, 3) - 6.0) < 1e-6


def test_no_rate_means_no_waiting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0, clock)

    assert not limiter.limited
    assert _drain(limiter, clock, 10_000) == 0


NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _letter(
    partition: int, offset: int, error_type: str, age: timedelta
) -> DeadLetterRecord:
    failed_at = (NOW - age).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    envelope = {
        "error_type": error_type,
        "error_category": "permanent",
        "original_topic": "agent-actions",
        "failed_at": failed_at,
    }
    return DeadLetterRecord("dlq", partition, offset, 0, None, None, (), envelope, None)


def test_stats_count_the_window_the_last_hour_and_the_depth_apart() -> None:
    letters = [
        _letter(0, 0, "NotJSONError", timedelta(hours=3)),
        _letter(0, 1, "NotJSONError", timedelta(minutes=59)),
        _letter(1, 0, "ValidationError", timedelta(minutes=30)),
        _letter(1, 1, "ValidationError", timedelta(hours=2)),
    ]

    stats = summarize(
        letters,
        dlq_topic="dlq",
        triage_group="triage",
        committed={0: 1, 1: None},
        now=NOW,
        since=NOW - timedelta(hours=2, minutes=30),
    )

    assert stats.total == 3
    assert stats.last_hour == 2
    assert stats.last_hour_by_type == {"NotJSONError": 1, "ValidationError": 1}
    assert stats.depth == 3
    assert stats.depth_by_partition == {0: 1, 1: 2}
    assert stats.oldest is not None
    assert (
        stats.oldest.partition,
        stats.oldest.offset,
    ) == (1, 1)
    assert stats.newest is not None
    assert (
        stats.newest.partition,
        stats.newest.offset,
    ) == (1, 0)


def test_progress_bar_draws_counts_on_a_terminal_and_nothing_elsewhere() -> None:
    drawn, silent = io.StringIO(), io.StringIO()
    bar = Progress("replaying", 4, enabled=True, stream=drawn)
    quiet = Progress("replaying", 4, stream=silent)

    for _ in range(4):
        bar.advance()
        quiet.advance()
    bar.close()
    quiet.close()

    assert "replaying [" in drawn.getvalue()
    assert "4/4" in drawn.getvalue()
    assert silent.getvalue() == ""
