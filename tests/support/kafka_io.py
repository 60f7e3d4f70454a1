"""Produce records to and read records back from the real broker in tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import ConsumerRecord, TopicPartition

from consumer_patch.topics import partitions_of

Headers = list[tuple[str, bytes]]


@dataclass
class Outgoing:
    value: bytes | None
    key: bytes | None = None
    headers: Headers = field(default_factory=list)
    partition: int | None = None


async def produce(bootstrap: str, topic: str, records: Sequence[Outgoing]) -> list[Any]:
    """Send with an idempotent acks=all producer; return the record metadata."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        max_request_size=4 * 1024 * 1024,
        linger_ms=5,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                value=item.value,
                key=item.key,
                headers=item.headers or None,
                partition=item.partition,
            )
            for item in records
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    expected: int,
    wait_seconds: float = 30.0,
    isolation_level: str = "read_committed",
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a topic from the beginning until ``expected`` records or the timeout.

    Waits a little past ``expected`` so that extra records (duplicates) are seen.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    await consumer.start()
    try:
        partitions = await wait_for_partitions(bootstrap, topic)
        consumer.assign(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + wait_seconds
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for items in batch.values():
                records.extend(items)
            if len(records) >= expected:
                settle_until = settle_until or time.monotonic() + 1.0
                if time.monotonic() >= settle_until:
                    break
        return records
    finally:
        await consumer.stop()


async def wait_for_partitions(
    bootstrap: str, topic: str, wait_seconds: float = 10.0
) -> list[TopicPartition]:
    """The topic's partitions, once the broker's metadata lists them."""
    deadline = time.monotonic() + wait_seconds
    while True:
        numbers = await partitions_of({"bootstrap_servers": bootstrap}, topic)
        if numbers:
            return [TopicPartition(topic, number) for number in numbers]
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic} has no partitions in metadata")
        await asyncio.sleep(0.2)


def envelopes(records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in records if record.value is not None]


def action(correlation_id: str, **fields: Any) -> dict[str, Any]:
    """A valid agent action; keyword arguments override fields."""
    base: dict[str, Any] = {
        "correlation_id": correlation_id,
        "agent_name": "planner",
        "action_type": "tool_call",
        "action_name": "search_docs",
        "action_details": {"query": "retention", "hits": 3},
        "debug_mode": False,
        "duration_ms": 12,
        "timestamp": "2026-12-03T10:15:30.123Z",
    }
    base.update(fields)
    return base


def action_bytes(correlation_id: str, **fields: Any) -> bytes:
    return json.dumps(action(correlation_id, **fields)).encode()


async def set_topic_config(bootstrap: str, topic: str, name: str, value: str) -> None:
    """Change one setting of a topic on the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={name: value})]
        )
    finally:
        await admin.close()
