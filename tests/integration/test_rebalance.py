"""A rebalance in the middle of a batch duplicates no dead letter and loses nothing.

Two consumers of one group, in transactional mode, against the real broker:
the first is still inside a slow handler call when the second joins and
takes partitions from it. The first must not write the dead letters or
commit the offsets of that batch afterwards; every record ends stored or
dead-lettered exactly once.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Sequence

from consumer_patch.records import ActionRecord
from consumer_patch.storage import PostgresWriter
from tests.conftest import Services
from tests.support.kafka_io import Outgoing, action_bytes, produce, read_topic
from tests.support.pipeline import (
    pipeline_settings,
    running_consumer,
    stored_rows,
    wait_until_drained,
)

PARTITIONS = 3
GOOD_PER_PARTITION = 20
# Long enough for the second consumer to join and the group to rebalance.
SLOW_CALL_SECONDS = 8.0


class SlowOnceStore:
    """Stores through PostgreSQL; refuses ``refuse-*`` actions (permanent), and
    the first call that holds the ``slow`` action sleeps first."""

    def __init__(self, writer: PostgresWriter):
        self.writer = writer
        self.slow_call_started = asyncio.Event()

    async def __call__(self, records: Sequence[ActionRecord]) -> None:
        ids = [record.action["correlation_id"] for record in records]
        if "slow" in ids and not self.slow_call_started.is_set():
            self.slow_call_started.set()
            await asyncio.sleep(SLOW_CALL_SECONDS)
        if any(name.startswith("refuse-") for name in ids):
            raise ValueError("refused by the handler")
        await self.writer(records)


def _stream() -> list[Outgoing]:
    stream = [Outgoing(action_bytes("slow"), partition=0)]
    for partition in range(PARTITIONS):
        stream.extend(
            Outgoing(action_bytes(f"ok-{partition}-{n}"), partition=partition)
            for n in range(GOOD_PER_PARTITION)
        )
        stream.append(Outgoing(b"{broken", partition=partition))
        stream.append(
            Outgoing(action_bytes(f"refuse-{partition}"), partition=partition)
        )
    return stream


async def test_rebalance_mid_batch_writes_each_dead_letter_once(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(
        services, unique, kafka_dlq_transactional=True, kafka_session_timeout_ms=6000
    )
    stream = _stream()
    await produce(services.bootstrap_servers, settings.kafka_topic, stream)
    first_settings = settings.model_copy(
        update={"kafka_transactional_id": unique("tx-first")}
    )
    second_settings = settings.model_copy(
        update={"kafka_transactional_id": unique("tx-second")}
    )
    writer = PostgresWriter(services.postgres_dsn)
    await writer.start()
    first_store, second_store = SlowOnceStore(writer), SlowOnceStore(writer)
    second_store.slow_call_started.set()  # only the first consumer is slow

    async with running_consumer(
        first_settings, handler=first_store, probe=writer.is_available
    ) as (first, _first_task):
        await asyncio.wait_for(first_store.slow_call_started.wait(), timeout=60)
        async with running_consumer(
            second_settings, handler=second_store, probe=writer.is_available
        ):
            await wait_until_drained(
                services,
                settings,
                wait_seconds=90,
                what="both consumers to drain the topic",
            )
        left = first.metrics.batches_left_to_rebalance.collect()[0].samples[0].value
    await writer.close()

    poison = 2 * PARTITIONS
    dead = await read_topic(
        services.bootstrap_servers, settings.kafka_dlq_topic, poison + 1, wait_seconds=5
    )
    letters = [json.loads(record.value) for record in dead]
    positions = Counter(
        (letter["original_partition"], letter["original_offset"]) for letter in letters
    )
    rows = await stored_rows(services.postgres_dsn, settings.kafka_topic)

    assert len(positions) == poison
    assert max(positions.values()) == 1, f"a dead letter was duplicated: {positions}"
    assert left >= 1, "the rebalance did not happen during the slow batch"
    assert len(rows) == len(stream) - poison
