"""The main job on the local stack: a realistic stream with poison, end to end.

Brings the stack up, creates the topics, runs the consumer, produces agent
actions with some poison records of each kind, waits until every record is
stored or dead-lettered, and reports what happened in this run.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from consumer_patch.consumer import DeadLetterConsumer
from consumer_patch.settings import Settings
from consumer_patch.storage import PostgresWriter
from consumer_patch.topics import ensure_topics, partitions_of, pipeline_topics

AGENTS = ("planner", "researcher", "writer", "reviewer", "executor")
ACTIONS = {
    "tool_call": ("search_docs", "run_sql", "fetch_url", "send_email"),
    "decision": ("choose_plan", "escalate", "retry_step"),
    "message": ("reply_user", "summarize"),
}
DRAIN_TIMEOUT_SECONDS = 120.0


@dataclass
class DemoReport:
    run_id: str
    produced: int
    poison_produced: Counter[str]
    stored: int
    dead_lettered: Counter[str]
    sample_envelope: dict[str, Any] | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "produced": self.produced,
            "poison_produced": dict(self.poison_produced),
            "stored": self.stored,
            "dead_lettered_by_error_type": dict(self.dead_lettered),
            "sample_envelope": self.sample_envelope,
            "seconds": round(self.seconds, 2),
            **self.extra,
        }


def _action(run_id: str, number: int, rng: random.Random) -> dict[str, Any]:
    action_type = rng.choice(sorted(ACTIONS))
    moment = datetime.now(UTC) - timedelta(seconds=rng.randint(0, 3600))
    return {
        "correlation_id": f"demo-{run_id}-{number // 4}",
        "agent_name": rng.choice(AGENTS),
        "action_type": action_type,
        "action_name": rng.choice(ACTIONS[action_type]),
        "action_details": {"step": number, "tokens": rng.randint(10, 4000)},
        "debug_mode": rng.random() < 0.1,
        "duration_ms": rng.randint(1, 5000),
        "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


# Each kind of poison the consumer must survive, as (label, value maker).
POISON: tuple[tuple[str, Callable[[dict[str, Any]], bytes | None]], ...] = (
    ("null value", lambda action: None),
    ("not UTF-8", lambda action: b"\xff\xfe" + json.dumps(action).encode("utf-16-le")),
    ("not JSON", lambda action: json.dumps(action).encode()[:-7]),
    (
        "invalid action",
        lambda action: json.dumps({**action, "duration_ms": -1}).encode(),
    ),
    (
        "refused by PostgreSQL",
        lambda action: json.dumps({**action, "agent_name": "bad\u0000name"}).encode(),
    ),
)


def _stream(
    run_id: str, count: int, poison_every: int, seed: int
) -> tuple[list[tuple[bytes, bytes | None]], Counter[str]]:
    rng = random.Random(seed)
    records: list[tuple[bytes, bytes | None]] = []
    poison: Counter[str] = Counter()
    for number in range(count):
        action = _action(run_id, number, rng)
        key = action["agent_name"].encode()
        if number % poison_every == poison_every // 2:
            label, make = POISON[(number // poison_every) % len(POISON)]
            records.append((key, make(action)))
            poison[label] += 1
        else:
            records.append((key, json.dumps(action).encode()))
    return records, poison


async def run_demo(
    settings: Settings,
    records: int,
    poison_every: int,
    progress: Callable[[str], None],
) -> DemoReport:
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    options = settings.kafka_client_options()
    await ensure_topics(options, pipeline_topics(settings))
    dlq_start = await _end_offsets(options, settings.kafka_dlq_topic)

    writer = PostgresWriter(settings.require_postgres_dsn())
    await writer.start()
    consumer = DeadLetterConsumer(settings, writer, probe=writer.is_available)
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        stream, poison = _stream(run_id, records, poison_every, seed=len(run_id))
        progress(
            f"producing {len(stream)} agent actions ({sum(poison.values())} poison)"
        )
        await _produce(options, settings.kafka_topic, stream, progress)
        progress("waiting until every record is stored or dead-lettered")
        await _wait_drained(consumer, options, settings, task)
    finally:
        consumer.request_stop()
        await asyncio.wait_for(task, timeout=60)
        await consumer.stop()
        await writer.close()

    stored = await _count_stored(settings.require_postgres_dsn(), run_id)
    letters = await _read_from(options, settings.kafka_dlq_topic, dlq_start)
    ours = [
        letter for letter in letters if letter["original_topic"] == settings.kafka_topic
    ]
    return DemoReport(
        run_id=run_id,
        produced=len(stream),
        poison_produced=poison,
        stored=stored,
        dead_lettered=Counter(letter["error_type"] for letter in ours),
        sample_envelope=_readable_sample(ours),
        seconds=time.monotonic() - started,
    )


def _readable_sample(letters: list[dict[str, Any]]) -> dict[str, Any] | None:
    # A validation failure shows the envelope best: short message, text value.
    for letter in letters:
        if letter["error_type"] == "ValidationError":
            return letter
    return letters[0] if letters else None


async def _produce(
    options: dict[str, object],
    topic: str,
    stream: list[tuple[bytes, bytes | None]],
    progress: Callable[[str], None],
) -> None:
    producer = AIOKafkaProducer(
        **options, enable_idempotence=True, acks="all", linger_ms=10
    )
    await producer.start()
    try:
        pending = []
        for index, (key, value) in enumerate(stream, start=1):
            pending.append(await producer.send(topic, value=value, key=key))
            if index % 500 == 0 or index == len(stream):
                await asyncio.gather(*pending)
                pending.clear()
                progress(f"  produced {index}/{len(stream)}")
    finally:
        await producer.stop()


async def _wait_drained(
    consumer: DeadLetterConsumer,
    options: dict[str, object],
    settings: Settings,
    task: asyncio.Task[None],
) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    ends = await _end_offsets(options, settings.kafka_topic)
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        while True:
            if task.done():
                task.result()  # re-raises what stopped the consumer
                raise RuntimeError("the consumer stopped before the stream was drained")
            committed = await admin.list_consumer_group_offsets(settings.kafka_group_id)
            behind = sum(
                max(0, end - (committed[tp].offset if tp in committed else 0))
                for tp, end in ends.items()
            )
            if behind == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{behind} records still unprocessed after the timeout"
                )
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def _end_offsets(
    options: dict[str, object], topic: str
) -> dict[TopicPartition, int]:
    partitions = [TopicPartition(topic, n) for n in await partitions_of(options, topic)]
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return ends


async def _read_from(
    options: dict[str, object], topic: str, start: dict[TopicPartition, int]
) -> list[dict[str, Any]]:
    ends = await _end_offsets(options, topic)
    consumer = AIOKafkaConsumer(
        **options, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    letters: list[dict[str, Any]] = []
    try:
        wanted = {tp: end for tp, end in ends.items() if end > start.get(tp, 0)}
        consumer.assign(list(wanted))
        for tp in wanted:
            consumer.seek(tp, start.get(tp, 0))
        positions = dict(start)
        while any(positions.get(tp, 0) < end for tp, end in wanted.items()):
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, items in batch.items():
                for item in items:
                    if item.value is not None:
                        letters.append(json.loads(item.value))
                positions[tp] = await consumer.position(tp)
    finally:
        await consumer.stop()
    return letters


async def _count_stored(dsn: str, run_id: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM agent_actions WHERE correlation_id LIKE $1",
            f"demo-{run_id}-%",
        )
    finally:
        await connection.close()
    return int(count)


def print_report(report: DemoReport) -> None:
    from consumer_patch.cli.output import table

    print(
        f"\nrun {report.run_id}: {report.produced} records in {report.seconds:.1f}s\n"
    )
    table(
        [
            {"outcome": "stored in PostgreSQL", "records": report.stored},
            {"outcome": "dead-lettered", "records": sum(report.dead_lettered.values())},
            {
                "outcome": "produced",
                "records": report.produced,
            },
        ],
        ("outcome", "records"),
    )
    print()
    table(
        [
            {"error_type": name, "dead_letters": count}
            for name, count in sorted(report.dead_lettered.items())
        ],
        ("error_type", "dead_letters"),
    )
    if report.sample_envelope is not None:
        print("\none dead letter, as it sits on the dead-letter topic:")
        print(json.dumps(report.sample_envelope, indent=2, ensure_ascii=False))
    sys.stdout.flush()
