"""Run the real consumer against the real stack inside a test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from consumer_patch.consumer import BatchHandler, DeadLetterConsumer, HealthProbe
from consumer_patch.settings import Settings, load_settings
from consumer_patch.storage import PostgresWriter
from consumer_patch.topics import dead_letter_topic, ensure_topics, source_topic
from tests.conftest import Services


async def pipeline_settings(
    services: Services, unique: Callable[[str], str], **overrides: Any
) -> Settings:
    """Settings for a fresh source topic, DLQ and group; the topics are created."""
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": services.bootstrap_servers,
        "kafka_topic": unique("actions"),
        "kafka_dlq_topic": unique("actions-dlq"),
        "kafka_group_id": unique("group"),
        "kafka_batch_size": 100,
        "kafka_batch_timeout_ms": 200,
        "kafka_retry_delay_ms": 20,
        "kafka_retry_max_delay_ms": 200,
        "postgres_dsn": services.postgres_dsn,
        "metrics_port": 0,
    }
    values.update(overrides)
    settings = load_settings(**values)
    await ensure_topics(
        services.bootstrap_servers,
        [
            source_topic(settings.kafka_topic),
            dead_letter_topic(settings.kafka_dlq_topic),
        ],
    )
    return settings


@asynccontextmanager
async def running_consumer(
    settings: Settings,
    handler: BatchHandler | None = None,
    probe: HealthProbe | None = None,
    **options: Any,
) -> AsyncIterator[tuple[DeadLetterConsumer, asyncio.Task[None]]]:
    """Start the consumer as a task; on exit ask it to stop and wait for it."""
    writer = PostgresWriter(settings.require_postgres_dsn())
    await writer.start()
    consumer = DeadLetterConsumer(
        settings,
        handler or writer,
        probe=probe if handler else (probe or writer.is_available),
        **options,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer, task
    finally:
        consumer.request_stop()
        try:
            await asyncio.wait_for(task, timeout=60)
        finally:
            await consumer.stop()
            await writer.close()


async def wait_until(
    condition: Callable[[], Awaitable[bool]], wait_seconds: float = 60.0, what: str = ""
) -> None:
    deadline = time.monotonic() + wait_seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {wait_seconds}s waiting for {what}")
        await asyncio.sleep(0.2)


async def stored_rows(dsn: str, topic: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(
            await connection.fetch(
                "SELECT * FROM agent_actions WHERE source_topic = $1 "
                "ORDER BY source_partition, source_offset",
                topic,
            )
        )
    finally:
        await connection.close()


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {partition: meta.offset for partition, meta in offsets.items()}


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    from aiokafka import AIOKafkaConsumer

    from tests.support.kafka_io import wait_for_partitions

    partitions = await wait_for_partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return ends


async def fully_committed(bootstrap: str, group: str, topic: str) -> bool:
    ends = await end_offsets(bootstrap, topic)
    committed = await committed_offsets(bootstrap, group)
    return all(committed.get(tp, 0) >= end for tp, end in ends.items() if end > 0)


async def wait_until_drained(
    services: Services,
    settings: Settings,
    what: str = "the consumer to commit the whole topic",
    wait_seconds: float = 60.0,
) -> None:
    """Wait until the group has committed every partition of its topic to the end."""
    await wait_until(
        lambda: fully_committed(
            services.bootstrap_servers, settings.kafka_group_id, settings.kafka_topic
        ),
        wait_seconds=wait_seconds,
        what=what,
    )
