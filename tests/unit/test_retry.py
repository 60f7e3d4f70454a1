"""Errors are classified as the retry model says, and backoff stays in its bounds."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from consumer_patch.errors import DeadLetterPublishError, ValidationError
from consumer_patch.retry import Backoff, ErrorClassifier


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (ConnectionRefusedError(), "transient"),
        (ConnectionResetError(), "transient"),
        (TimeoutError(), "transient"),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), "transient"),
        (asyncpg.exceptions.SerializationError("serialization"), "transient"),
        (asyncpg.exceptions.ConnectionDoesNotExistError("gone"), "transient"),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), "transient"),
        (KafkaConnectionError(), "transient"),
        (DeadLetterPublishError("x"), "transient"),
        (asyncpg.exceptions.UniqueViolationError("dup"), "permanent"),
        (asyncpg.exceptions.CheckViolationError("check"), "permanent"),
        (asyncpg.exceptions.CharacterNotInRepertoireError("nul"), "permanent"),
        (MessageSizeTooLargeError(), "permanent"),
        (ValidationError("bad"), "permanent"),
        (ValueError("bad"), "permanent"),
        (RuntimeError("who knows"), "unknown"),
    ],
)
def test_default_classification(error: BaseException, category: str) -> None:
    assert ErrorClassifier().classify(error) == category


def test_a_wrapped_error_is_classified_by_its_cause() -> None:
    error = RuntimeError("write failed")
    error.__cause__ = ConnectionResetError()

    assert ErrorClassifier().classify(error) == "transient"


def test_registered_types_and_predicates_come_first() -> None:
    class ThrottledError(Exception):
        pass

    classifier = ErrorClassifier()
    classifier.register(ThrottledError, "transient")
    classifier.register_predicate(lambda e: "permanent" if "quota" in str(e) else None)

    assert classifier.classify(ThrottledError("slow down")) == "transient"
    assert classifier.classify(ConnectionError("quota exceeded")) == "permanent"


def test_backoff_doubles_up_to_the_cap_within_jitter_bounds() -> None:
    backoff = Backoff(base_delay=0.1, max_delay=1.0)

    ceilings = [backoff.ceiling(n) for n in range(1, 7)]

    assert ceilings == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    for attempt in range(1, 7):
        for _ in range(200):
            delay = backoff.delay(attempt)
            assert backoff.ceiling(attempt) / 2 <= delay <= backoff.ceiling(attempt)


def test_backoff_extremes_of_the_jitter() -> None:
    low = Backoff(1.0, 60.0, random_source=lambda: 0.0)
    high = Backoff(1.0, 60.0, random_source=lambda: 1.0)

    assert low.delay(3) == 2.0
    assert high.delay(3) == 4.0
