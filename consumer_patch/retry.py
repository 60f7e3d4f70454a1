"""Which failures are worth retrying, and how long to wait between attempts.

Transient failures (connection refused or reset, timeouts, deadlocks,
serialization failures, broker unavailable) may pass on a later attempt.
Permanent ones (undecodable or invalid records, constraint violations, bad
data) fail the same way every time and go to the dead-letter topic at once.
Anything unrecognised is ``unknown``: it gets the retry budget of a transient
failure, then is dead-lettered with its category recorded.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from consumer_patch.envelope import ErrorCategory
from consumer_patch.errors import AgentDLQError, RecordError

Predicate = Callable[[BaseException], ErrorCategory | None]

# SQLSTATE classes and codes (PostgreSQL appendix A) that a retry can fix.
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "57014",  # query_canceled (statement timeout)
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "53300",  # too_many_connections
        "53400",  # configuration_limit_exceeded
    }
)
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
PERMANENT_SQLSTATE_CLASSES = frozenset({"22", "23", "42", "2F", "P0"})


def _by_package_errors(error: BaseException) -> ErrorCategory | None:
    if isinstance(error, RecordError):
        return "permanent"
    if isinstance(error, AgentDLQError):
        return "transient" if error.transient else "permanent"
    return None


def _by_sqlstate(error: BaseException) -> ErrorCategory | None:
    sqlstate = getattr(error, "sqlstate", None)
    if not isinstance(sqlstate, str) or len(sqlstate) != 5:
        return None
    if sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES:
        return "transient"
    if sqlstate[:2] in PERMANENT_SQLSTATE_CLASSES:
        return "permanent"
    return None


def _by_kafka_flag(error: BaseException) -> ErrorCategory | None:
    # aiokafka marks errors a retry can fix with a class attribute.
    from aiokafka.errors import KafkaError

    if isinstance(error, KafkaError):
        return "transient" if getattr(error, "retriable", False) else "permanent"
    return None


def _by_builtin_type(error: BaseException) -> ErrorCategory | None:
    if isinstance(error, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return "transient"
    if isinstance(error, OSError):
        return "transient"
    if isinstance(error, (ValueError, TypeError, KeyError, UnicodeError)):
        return "permanent"
    return None


@dataclass
class ErrorClassifier:
    """Classify an exception as transient, permanent or unknown.

    Users register their own rules; they are asked first, most recent first.
    A rule returns a category or None to let the next rule decide::

        classifier.register(MyThrottled, "transient")
        classifier.register_predicate(
            lambda e: "permanent" if "quota" in str(e) else None
        )
    """

    _rules: list[Predicate] = field(default_factory=list)

    def register(
        self, error_type: type[BaseException], category: ErrorCategory
    ) -> None:
        def rule(error: BaseException) -> ErrorCategory | None:
            return category if isinstance(error, error_type) else None

        self._rules.insert(0, rule)

    def register_predicate(self, predicate: Predicate) -> None:
        self._rules.insert(0, predicate)

    def classify(self, error: BaseException) -> ErrorCategory:
        for rule in (
            *self._rules,
            _by_package_errors,
            _by_sqlstate,
            _by_kafka_flag,
            _by_builtin_type,
        ):
            category = rule(error)
            if category is not None:
                return category
        cause = error.__cause__ or error.__context__
        if cause is not None and cause is not error:
            return self.classify(cause)
        return "unknown"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter", capped.

    The n-th wait (n >= 1) is drawn uniformly from [d/2, d] where
    d = min(max_delay, base_delay * 2 ** (n - 1)): waits grow geometrically,
    never exceed the cap, and retries of many consumers do not line up.
    """

    base_delay: float
    max_delay: float
    random_source: Callable[[], float] = random.random

    def ceiling(self, attempt: int) -> float:
        exponent = min(max(attempt, 1) - 1, 62)
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def delay(self, attempt: int) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + float(self.random_source()) * ceiling / 2
