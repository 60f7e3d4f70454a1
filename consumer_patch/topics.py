"""The topics the pipeline needs, declared once, and creating them on a cluster.

The Pulumi program declares the same topics from these values for each
environment; the local stack and the tests create them with ``ensure_topics``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from consumer_patch.errors import AgentDLQError
from consumer_patch.settings import DEFAULT_DLQ_MAX_MESSAGE_BYTES, Settings

logger = logging.getLogger(__name__)

SEVEN_DAYS_MS = 7 * 24 * 60 * 60 * 1000
DLQ_PARTITIONS = 3
SOURCE_PARTITIONS = 3


class KafkaTopicError(AgentDLQError):
    """The broker refused to create or describe a topic."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


def dead_letter_topic_configs(min_insync_replicas: int = 1) -> dict[str, str]:
    """Topic-level settings of the dead-letter topic, as declared everywhere.

    Note:
        ``max.message.bytes`` is larger than the source topic's because an
        envelope carries the original record (base64 grows non-UTF-8 bytes by
        a third) plus error text. With ``acks=all`` a write succeeds once
        ``min.insync.replicas`` replicas have it, and no out-of-sync replica
        may become leader, so an acknowledged dead letter survives the loss of
        a broker whenever the replication factor exceeds that minimum.
    """
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(SEVEN_DAYS_MS),
        "max.message.bytes": str(DEFAULT_DLQ_MAX_MESSAGE_BYTES),
        "min.insync.replicas": str(min_insync_replicas),
        "unclean.leader.election.enable": "false",
    }


REPLAY_LEDGER_PARTITIONS = 1
# Longer than the dead-letter topic's 7 days, so a dead letter always expires
# before its ledger entry does; compaction keeps one entry per key.
REPLAY_LEDGER_RETENTION_MS = 30 * 24 * 60 * 60 * 1000
REPLAY_TRANSACTIONAL_ID_PREFIX = "agent-dlq-replay."


def replay_ledger_name(dead_letter_topic_name: str) -> str:
    """The default replay ledger topic of a dead-letter topic."""
    return f"{dead_letter_topic_name}-replay-ledger"


def replay_ledger_topic_configs(min_insync_replicas: int = 1) -> dict[str, str]:
    """Topic-level settings of the replay ledger (what replay has sent where)."""
    return {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(REPLAY_LEDGER_RETENTION_MS),
        "min.insync.replicas": str(min_insync_replicas),
    }


def dead_letter_topic(
    name: str = "agent-actions-dlq",
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> TopicSpec:
    """The dead-letter topic: 3 partitions, 7-day retention, room for envelopes."""
    return TopicSpec(
        name,
        DLQ_PARTITIONS,
        replication_factor,
        dead_letter_topic_configs(min_insync_replicas),
    )


def source_topic(
    name: str = "agent-actions",
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> TopicSpec:
    return TopicSpec(
        name,
        SOURCE_PARTITIONS,
        replication_factor,
        {"min.insync.replicas": str(min_insync_replicas)},
    )


def pipeline_topics(settings: Settings) -> list[TopicSpec]:
    return [
        source_topic(settings.kafka_topic),
        dead_letter_topic(settings.kafka_dlq_topic),
    ]


async def ensure_topics(
    bootstrap_servers: str | dict[str, object], specs: Sequence[TopicSpec]
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    options = (
        {"bootstrap_servers": bootstrap_servers}
        if isinstance(bootstrap_servers, str)
        else dict(bootstrap_servers)
    )
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if not missing:
            return []
        new_topics = [
            NewTopic(
                spec.name,
                spec.partitions,
                spec.replication_factor,
                topic_configs=spec.configs,
            )
            for spec in missing
        ]
        response = await admin.create_topics(new_topics)
        created = []
        for topic, code, message in _topic_errors(response):
            if code == TopicAlreadyExistsError.errno:
                logger.info("topic %s was created concurrently", topic)
            elif code != 0:
                raise KafkaTopicError(
                    f"creating topic {topic} failed: {message} ({code})"
                )
            else:
                created.append(topic)
        return created
    finally:
        await admin.close()


async def describe_topic_configs(
    options: dict[str, object], topic: str
) -> dict[str, str]:
    """The topic's effective configuration, as the broker reports it."""
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    configs: dict[str, str] = {}
    for response in responses:
        for code, message, _type, _name, entries in response.resources:
            if code != 0:
                raise KafkaTopicError(f"describing topic {topic} failed: {message}")
            for entry in entries:
                configs[entry[0]] = entry[1]
    return configs


async def partitions_of(options: dict[str, object], topic: str) -> list[int]:
    """The topic's partition numbers, sorted; empty when the topic is missing."""
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    numbers: list[int] = []
    for entry in described:
        if entry.get("topic") == topic and entry.get("error_code", 0) == 0:
            numbers.extend(part["partition"] for part in entry.get("partitions", []))
    return sorted(numbers)


async def missing_topics(options: dict[str, object], names: Sequence[str]) -> list[str]:
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return [name for name in names if name not in existing]


def _topic_errors(response: object) -> list[tuple[str, int, str]]:
    errors: list[tuple[str, int, str]] = []
    for entry in getattr(response, "topic_errors", []):
        topic, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 and entry[2] else ""
        errors.append((topic, code, message))
    return errors
