"""A PostgreSQL outage longer than the retry budget dead-letters nothing and heals.

Stops and restarts the suite's own PostgreSQL under a running consumer, whose
backoff waits are longer than its ``max.poll.interval.ms``: it must stay in
its group throughout (paused partitions, polling on), not be evicted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.conftest import Services
from tests.support.kafka_io import Outgoing, action_bytes, produce, read_topic
from tests.support.pipeline import (
    pipeline_settings,
    running_consumer,
    stored_rows,
    wait_until_drained,
)


async def test_database_outage_holds_position_then_resumes_without_dead_letters(
    services: Services, unique: Callable[[str], str]
) -> None:
    control = services.postgres_control
    if control is None:
        pytest.skip("POSTGRES_DSN points at a server this suite must not stop")
    settings = await pipeline_settings(
        services,
        unique,
        kafka_max_retries=2,
        kafka_retry_delay_ms=1500,
        kafka_retry_max_delay_ms=2500,
        kafka_max_poll_interval_ms=1000,
    )
    first = [Outgoing(action_bytes(f"ok-{n}")) for n in range(300)]
    second = [Outgoing(action_bytes(f"ok-{n}")) for n in range(300, 600)]
    await produce(services.bootstrap_servers, settings.kafka_topic, first)

    async with running_consumer(settings) as (consumer, task):
        await wait_until_drained(services, settings, what="the first part to be stored")
        members_before = await _member_ids(services, settings.kafka_group_id)
        await asyncio.to_thread(control.stop)
        try:
            await produce(services.bootstrap_servers, settings.kafka_topic, second)
            # Longer than the in-place retry budget, and several times
            # max.poll.interval.ms.
            await asyncio.sleep(6.0)
            unhealthy_during = not consumer.health.is_healthy
            outage_metric = consumer.metrics.outage.collect()[0].samples[0].value
        finally:
            await asyncio.to_thread(control.start)
        await wait_until_drained(
            services, settings, what="progress after PostgreSQL came back"
        )
        healthy_after = consumer.health.is_healthy
        members_after = await _member_ids(services, settings.kafka_group_id)
        assert not task.done()

    rows = await stored_rows(services.postgres_dsn, settings.kafka_topic)
    dead = await read_topic(
        services.bootstrap_servers, settings.kafka_dlq_topic, expected=0, wait_seconds=3
    )
    assert len(members_before) == 1
    assert members_after == members_before, "the consumer left or lost its group"
    assert unhealthy_during
    assert outage_metric == 1
    assert healthy_after
    assert dead == []
    assert len(rows) == 600


async def _member_ids(services: Services, group: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=services.bootstrap_servers)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    # DescribeGroups: (error, group, state, protocol type, protocol, members, …),
    # each member starting with its member id.
    return sorted(
        member[0]
        for response in responses
        for described in response.groups
        for member in described[5]
    )
