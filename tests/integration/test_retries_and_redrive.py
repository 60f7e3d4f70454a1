"""Transient failures heal by retry and redrive; hopeless ones are parked at the limit.

Runs the real consumer and redrive worker against the local Kafka and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import pairwise

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from consumer_patch import headers
from consumer_patch.attempts import AttemptNote
from consumer_patch.consumer import DeadLetterConsumer
from consumer_patch.envelope import Failure, build_dead_letter
from consumer_patch.records import ActionRecord
from consumer_patch.redrive import RedriveWorker
from consumer_patch.settings import Settings
from consumer_patch.storage import PostgresWriter
from tests.conftest import Services
from tests.support.kafka_io import Outgoing, action_bytes, produce, read_topic
from tests.support.pipeline import (
    pipeline_settings,
    running_consumer,
    stored_rows,
    wait_until,
    wait_until_drained,
)


class FlakyStore:
    """Stores through PostgreSQL, but fails records of chosen correlation ids
    with a connection error while ``failing`` is set; logs every attempt."""

    def __init__(self, writer: PostgresWriter, failing: set[str]):
        self.writer = writer
        self.failing = failing
        self.attempts: dict[str, list[float]] = {}

    async def __call__(self, records: Sequence[ActionRecord]) -> None:
        ids = [record.action["correlation_id"] for record in records]
        if len(ids) == 1:
            self.attempts.setdefault(ids[0], []).append(time.monotonic())
        if self.failing.intersection(ids):
            raise ConnectionResetError("connection reset by peer")
        await self.writer(records)


async def _redrive_once(settings: Settings) -> dict[str, object]:
    worker = RedriveWorker(settings)
    await worker.start()
    try:
        summary = await asyncio.wait_for(worker.run(until_caught_up=True), timeout=60)
    finally:
        await worker.stop()
    return summary.as_json()


async def _dead_letters(
    services: Services, settings: Settings, expected: int
) -> list[dict]:
    records = await read_topic(
        services.bootstrap_servers, settings.kafka_dlq_topic, expected, wait_seconds=20
    )
    return [json.loads(record.value) for record in records]


async def test_in_place_backoff_grows_as_documented(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(
        services,
        unique,
        kafka_max_retries=3,
        kafka_retry_delay_ms=200,
        kafka_retry_max_delay_ms=2000,
    )
    writer = PostgresWriter(services.postgres_dsn)
    await writer.start()
    store = FlakyStore(writer, {"flaky"})
    await produce(
        services.bootstrap_servers,
        settings.kafka_topic,
        [Outgoing(action_bytes("flaky"))],
    )

    async with running_consumer(settings, handler=store, probe=writer.is_available):
        letters = await _dead_letters(services, settings, 1)
    await writer.close()

    times = store.attempts["flaky"]
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert len(times) == 4
    for number, gap in enumerate(gaps, start=1):
        ceiling = 0.2 * 2 ** (number - 1)
        # Equal jitter draws from [ceiling/2, ceiling]; polling adds a little.
        assert ceiling / 2 <= gap <= ceiling + 0.25, (number, gap)
    assert letters[0]["error_category"] == "transient"
    assert letters[0]["retry_count"] == 4


async def test_failure_that_clears_is_redriven_and_finally_stored(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(
        services, unique, kafka_max_retries=1, kafka_redrive_delay_ms=300
    )
    writer = PostgresWriter(services.postgres_dsn)
    await writer.start()
    store = FlakyStore(writer, {"flaky"})
    source = [Outgoing(action_bytes(f"ok-{n}")) for n in range(20)]
    source.append(
        Outgoing(action_bytes("flaky"), key=b"k-flaky", headers=[("trace", b"t")])
    )
    await produce(services.bootstrap_servers, settings.kafka_topic, source)

    async with running_consumer(settings, handler=store, probe=writer.is_available):
        first = await _dead_letters(services, settings, 1)
        store.failing.clear()  # the cause goes away
        summary = await _redrive_once(settings)
        await wait_until(
            lambda: _stored_ids_include(services, settings, "flaky"),
            what="the redriven record to be stored",
        )
        redriven = [
            record
            for record in await read_topic(
                services.bootstrap_servers, settings.kafka_topic, len(source) + 1
            )
            if record.key == b"k-flaky"
        ]
    await writer.close()

    letter = first[0]
    assert letter["error_category"] == "transient"
    assert letter["error_type"] == "ConnectionResetError"
    assert letter["retry_count"] == 2
    assert summary["redriven"] == 1
    last = redriven[-1]
    header_map = dict(last.headers)
    assert header_map[headers.RETRY_COUNT] == b"2"
    assert (
        header_map[headers.REPLAYED_FROM].decode().startswith(settings.kafka_dlq_topic)
    )
    assert header_map["trace"] == b"t"
    assert last.value == action_bytes("flaky")
    failed_at = datetime.fromisoformat(letter["failed_at"].replace("Z", "+00:00"))
    assert last.timestamp / 1000 - failed_at.timestamp() >= 0.3 * 2


async def test_always_failing_record_uses_exactly_its_attempt_budget_then_parks(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(
        services,
        unique,
        kafka_max_retries=1,
        kafka_max_attempts=5,
        kafka_redrive_delay_ms=50,
        kafka_redrive_max_delay_ms=200,
    )
    writer = PostgresWriter(services.postgres_dsn)
    await writer.start()
    store = FlakyStore(writer, {"hopeless"})
    await produce(
        services.bootstrap_servers,
        settings.kafka_topic,
        [Outgoing(action_bytes("hopeless"))],
    )

    worker = RedriveWorker(settings)
    await worker.start()
    worker_task = asyncio.create_task(worker.run())
    try:
        async with running_consumer(settings, handler=store, probe=writer.is_available):
            await wait_until(
                lambda: _parked(worker, "exhausted"), what="the record to be parked"
            )
    finally:
        worker.request_stop()
        await worker_task
        await worker.stop()
        await writer.close()

    letters = await _dead_letters(services, settings, 3)
    assert sorted(letter["retry_count"] for letter in letters) == [2, 4, 5]
    assert len(store.attempts["hopeless"]) == 5
    assert worker.summary.as_json()["redriven"] == 2
    assert worker.summary.as_json()["parked_by_reason"] == {"exhausted": 1}


async def test_redrive_parks_permanent_failures_and_a_restart_resends_nothing(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(services, unique)
    await produce(
        services.bootstrap_servers,
        settings.kafka_topic,
        [Outgoing(b"not json"), Outgoing(b"\xff\xfe")],
    )
    async with running_consumer(settings):
        await _dead_letters(services, settings, 2)
        await wait_until_drained(services, settings, what="the consumer to commit")

    first = await _redrive_once(settings)
    second = await _redrive_once(settings)

    assert first["parked_by_reason"] == {"permanent": 2}
    assert second["parked"] == 0
    assert second["redriven"] == 0


async def _parked(worker: RedriveWorker, reason: str) -> bool:
    return worker.summary.parked[reason] > 0


async def _stored_ids_include(
    services: Services, settings: Settings, wanted: str
) -> bool:
    rows = await stored_rows(services.postgres_dsn, settings.kafka_topic)
    return any(row["correlation_id"] == wanted for row in rows)


async def test_two_redrive_workers_split_the_dead_letters_and_send_each_once(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(
        services,
        unique,
        kafka_redrive_group_id=unique("redrive"),
        kafka_redrive_delay_ms=REDRIVE_DELAY_MS,
        kafka_redrive_max_delay_ms=REDRIVE_DELAY_MS,
    )
    letters = [_transient_dead_letter(settings, number) for number in range(30)]
    await produce(services.bootstrap_servers, settings.kafka_dlq_topic, letters)

    # The first worker queues every dead letter (none is due yet); the second
    # joins before they are due and takes partitions away from the first.
    first = RedriveWorker(
        settings.model_copy(update={"kafka_redrive_transactional_id": unique("a")})
    )
    second = RedriveWorker(
        settings.model_copy(update={"kafka_redrive_transactional_id": unique("b")})
    )
    await first.start()
    first_run = asyncio.create_task(first.run())
    await asyncio.sleep(2.0)
    await second.start()
    second_run = asyncio.create_task(second.run())
    try:
        redriven = await read_topic(
            services.bootstrap_servers, settings.kafka_topic, 30, wait_seconds=60
        )
        late = await read_topic(
            services.bootstrap_servers, settings.kafka_topic, 31, wait_seconds=3
        )
        crashed = [task.exception() for task in (first_run, second_run) if task.done()]
    finally:
        first.request_stop()
        second.request_stop()
        await asyncio.gather(first_run, second_run, return_exceptions=True)
        await first.stop()
        await second.stop()

    sent = [json.loads(record.value)["correlation_id"] for record in late]
    assert crashed == []
    assert len(redriven) == 30
    assert sorted(sent) == sorted(f"split-{number}" for number in range(30))
    assert first.summary.as_json()["redriven"] > 0
    assert second.summary.as_json()["redriven"] > 0


# Long enough for the second worker to join before anything is due.
REDRIVE_DELAY_MS = 10_000


def _transient_dead_letter(settings: Settings, number: int) -> Outgoing:
    source = ConsumerRecord(
        topic=settings.kafka_topic,
        partition=number % 3,
        offset=number,
        timestamp=int(time.time() * 1000),
        timestamp_type=0,
        key=b"k%d" % number,
        value=action_bytes(f"split-{number}"),
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=-1,
        headers=(),
    )
    failure = Failure(ConnectionResetError("reset by peer"), "transient", 1)
    _envelope, value = build_dead_letter(
        source, failure, consumer_group=settings.kafka_group_id, prior_attempts=0
    )
    return Outgoing(value, key=source.key, partition=number % 3)


async def test_in_place_attempts_survive_a_crash_and_are_not_granted_again(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(
        services,
        unique,
        kafka_max_retries=5,
        kafka_retry_delay_ms=1000,
        kafka_retry_max_delay_ms=2000,
    )
    writer = PostgresWriter(services.postgres_dsn)
    await writer.start()
    store = FlakyStore(writer, {"stuck"})
    source = [Outgoing(action_bytes(f"ok-{n}"), partition=0) for n in range(6)]
    source.insert(3, Outgoing(action_bytes("stuck"), partition=0))  # offset 3
    await produce(services.bootstrap_servers, settings.kafka_topic, source)

    # The first consumer dies (no clean stop, nothing committed for the batch)
    # while it waits to retry the stuck record a fourth time.
    crashed = DeadLetterConsumer(settings, store, probe=writer.is_available)
    await crashed.start()
    crashed_run = asyncio.create_task(crashed.run())
    try:
        await wait_until(
            lambda: _noted_attempts(services, settings, expected=3),
            wait_seconds=30,
            what="three attempts noted in the committed offset's metadata",
        )
    finally:
        crashed_run.cancel()
        await asyncio.gather(crashed_run, return_exceptions=True)
        await crashed.stop()
    before_crash = len(store.attempts["stuck"])

    async with running_consumer(settings, handler=store, probe=writer.is_available):
        letters = await _dead_letters(services, settings, 1)
        await wait_until_drained(
            services, settings, what="the restarted consumer to commit"
        )
    rows = await stored_rows(services.postgres_dsn, settings.kafka_topic)
    await writer.close()

    assert before_crash == 3
    # 1 + KAFKA_MAX_RETRIES attempts in all, not that many again after the crash.
    assert len(store.attempts["stuck"]) == 6
    assert letters[0]["original_offset"] == 3
    assert letters[0]["retry_count"] == 6
    assert sorted(row["source_offset"] for row in rows) == [0, 1, 2, 4, 5, 6]


async def _noted_attempts(
    services: Services, settings: Settings, expected: int
) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=services.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.kafka_group_id)
    finally:
        await admin.close()
    notes = [AttemptNote.decode(committed.metadata) for committed in offsets.values()]
    return any(note is not None and note.attempts == expected for note in notes)
