"""Lossless dead-letter handling for the agent-actions Kafka consumer.

The public API; everything else is an implementation detail.
"""

from consumer_patch.consumer import BatchHandler, DeadLetterConsumer, HealthProbe
from consumer_patch.envelope import Failure, build_envelope, decode_bytes, encode_bytes
from consumer_patch.errors import (
    AgentDLQError,
    DeadLetterPublishError,
    EnvelopeError,
    NotJSONError,
    NotUTF8Error,
    NullValueError,
    RecordError,
    SettingsError,
    UnhandledRecordError,
    ValidationError,
)
from consumer_patch.publisher import DeadLetterPublisher
from consumer_patch.records import ActionRecord, decode_action
from consumer_patch.retry import Backoff, ErrorClassifier
from consumer_patch.settings import Settings, load_settings
from consumer_patch.storage import PostgresWriter

__all__ = [
    "ActionRecord",
    "AgentDLQError",
    "Backoff",
    "BatchHandler",
    "DeadLetterConsumer",
    "DeadLetterPublishError",
    "DeadLetterPublisher",
    "EnvelopeError",
    "ErrorClassifier",
    "Failure",
    "HealthProbe",
    "NotJSONError",
    "NotUTF8Error",
    "NullValueError",
    "PostgresWriter",
    "RecordError",
    "Settings",
    "SettingsError",
    "UnhandledRecordError",
    "ValidationError",
    "build_envelope",
    "decode_action",
    "decode_bytes",
    "encode_bytes",
    "load_settings",
]
