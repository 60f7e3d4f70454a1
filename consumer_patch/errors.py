"""Exceptions raised by consumer_patch.

All of them derive from one base, so callers can catch the package's errors
apart from everything else::

    AgentDLQError
    ├── SettingsError            a setting is missing or invalid (names it)
    ├── StackError               the local stack could not start or stop
    ├── RecordError              a source record cannot become an agent action
    │   ├── NullValueError       the value is null (a tombstone)
    │   ├── NotUTF8Error         the value is not UTF-8 text
    │   ├── NotJSONError         the value is not JSON
    │   └── ValidationError      the JSON is not a valid agent action
    ├── EnvelopeError            a dead-letter envelope cannot be built or is invalid
    ├── DeadLetterPublishError   the dead-letter topic did not acknowledge a write
    ├── DependencyUnavailableError    the downstream store is down (outage guard)
    └── UnhandledRecordError     a record failed while dead-lettering is disabled

``transient`` tells whether retrying the same operation later may succeed.
"""

from __future__ import annotations

from typing import ClassVar


class AgentDLQError(Exception):
    """Base class of every error raised by consumer_patch."""

    transient: ClassVar[bool] = False


class SettingsError(AgentDLQError):
    """A setting is missing or invalid; the message names the setting."""


class StackError(AgentDLQError):
    """A service of the local stack could not be started, checked or stopped."""


class RecordError(AgentDLQError):
    """A source record cannot be turned into an agent action.

    These failures are permanent: the same bytes fail the same way every time,
    so the record is dead-lettered at once without retries.
    """


class NullValueError(RecordError):
    """The record value is null."""


class NotUTF8Error(RecordError):
    """The record value is not valid UTF-8."""


class NotJSONError(RecordError):
    """The record value is UTF-8 text but not JSON."""


class ValidationError(RecordError):
    """The record value is JSON but not a valid agent action."""


class EnvelopeError(AgentDLQError):
    """A dead-letter envelope could not be built within the size limit, or is
    invalid against its schema (a bug in this package, never the record's)."""


class DeadLetterPublishError(AgentDLQError):
    """The dead-letter topic did not acknowledge a write."""

    transient = True


class DependencyUnavailableError(AgentDLQError):
    """The downstream store failed a health probe; the consumer holds position."""

    transient = True


class UnhandledRecordError(AgentDLQError):
    """A record failed while dead-lettering is disabled; the consumer stops.

    Attributes:
        topic, partition, offset: the first record that failed.
    """

    def __init__(self, topic: str, partition: int, offset: int, cause: BaseException):
        super().__init__(
            f"record {topic}-{partition}@{offset} failed with "
            f"{type(cause).__name__} and dead-lettering is disabled "
            "(KAFKA_DLQ_ENABLED=false); offsets were committed up to it"
        )
        self.topic = topic
        self.partition = partition
        self.offset = offset
