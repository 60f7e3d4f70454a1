"""The local stack's Kafka and PostgreSQL do what the rest of the suite relies on."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from consumer_patch.topics import TopicSpec, describe_topic_configs, ensure_topics
from tests.conftest import Services
from tests.support.kafka_io import Outgoing, produce, read_topic


async def test_idempotent_acks_all_producer_round_trips_records(
    services: Services, unique: Callable[[str], str]
) -> None:
    topic = unique("smoke-produce")
    await ensure_topics(services.bootstrap_servers, [TopicSpec(topic, 3, 1)])
    sent = [
        Outgoing(
            f"value-{n}".encode(), key=f"key-{n}".encode(), headers=[("n", b"%d" % n)]
        )
        for n in range(30)
    ]

    metadata = await produce(services.bootstrap_servers, topic, sent)
    received = await read_topic(services.bootstrap_servers, topic, expected=30)

    assert len(metadata) == 30
    got = sorted((r.key, r.value, list(r.headers)) for r in received)
    want = sorted((o.key, o.value, o.headers) for o in sent)
    assert got == want


async def test_consumer_group_commits_and_reads_back_its_offsets(
    services: Services, unique: Callable[[str], str]
) -> None:
    topic, group = unique("smoke-commit"), unique("group")
    await ensure_topics(services.bootstrap_servers, [TopicSpec(topic, 1, 1)])
    await produce(services.bootstrap_servers, topic, [Outgoing(b"x") for _ in range(5)])
    partition = TopicPartition(topic, 0)

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=services.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        seen = 0
        while seen < 5:
            batch = await consumer.getmany(timeout_ms=5000)
            seen += sum(len(records) for records in batch.values())
        await consumer.commit({partition: 3})
        committed = await consumer.committed(partition)
    finally:
        await consumer.stop()

    assert committed == 3


async def test_created_topic_configs_read_back_through_describe_configs(
    services: Services, unique: Callable[[str], str]
) -> None:
    topic = unique("smoke-configs")
    spec = TopicSpec(
        topic, 3, 1, {"retention.ms": "604800000", "max.message.bytes": "8388608"}
    )

    created = await ensure_topics(services.bootstrap_servers, [spec])
    configs = await describe_topic_configs(
        {"bootstrap_servers": services.bootstrap_servers}, topic
    )

    assert created == [topic]
    assert configs["retention.ms"] == "604800000"
    assert configs["max.message.bytes"] == "8388608"
    assert await ensure_topics(services.bootstrap_servers, [spec]) == []


async def test_agent_actions_table_has_its_idempotency_constraint(
    services: Services,
) -> None:
    connection = await asyncpg.connect(services.postgres_dsn)
    try:
        columns = {
            row["column_name"]
            for row in await connection.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'agent_actions'"
            )
        }
        constraint = await connection.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'agent_actions_source_record_key'"
        )
    finally:
        await connection.close()

    assert {
        "correlation_id",
        "agent_name",
        "action_type",
        "action_name",
        "action_details",
        "debug_mode",
        "duration_ms",
        "timestamp",
    } <= columns
    assert constraint == "UNIQUE (source_topic, source_partition, source_offset)"
