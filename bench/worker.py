"""One side of a comparison, run in a process of its own.

``python -m bench.worker '<spec as JSON>'`` runs one side (our consumer, a
raw aiokafka loop, a raw producer, a replay) over a prepared topic, then
prints one line ``RESULT <json>`` with the records, the timed seconds, the
CPU seconds and the peak resident memory of the process. A process per run
keeps the sides apart: one side's heap, caches and garbage never weigh on
the other's numbers, and peak RSS is that side's alone.

Timing starts when the first batch has been fetched and stops when the last
record's outcome is committed (or acknowledged, for producers), so group
joins and connection set-up are left out on both sides alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from bench.data import noop_handler, refusing_handler
from consumer_patch.consumer import BatchHandler, DeadLetterConsumer, HealthProbe
from consumer_patch.operator.replay import replay
from consumer_patch.operator.selection import Selection
from consumer_patch.publisher import REQUEST_TIMEOUT_MS
from consumer_patch.records import SourceRecord
from consumer_patch.republish import DeadLetterPosition, parse_envelope
from consumer_patch.republish import republish_record as original_of
from consumer_patch.settings import Settings, load_settings
from consumer_patch.storage import PostgresWriter
from consumer_patch.topics import partitions_of

logger = logging.getLogger(__name__)

RESULT_PREFIX = "RESULT "
HANDLER_CALLS_METRIC = "agent_dlq_handler_calls_total"
POLL_TIMEOUT_MS = 500
PUBLISHER_LINGER_MS = 5


@dataclass(frozen=True)
class WorkerSpec:
    """What one run does; ``mode`` picks the side."""

    mode: str
    bootstrap_servers: str
    topic: str
    records: int
    group: str = ""
    batch_size: int = 500
    dlq_topic: str = ""
    dlq_enabled: bool = True
    handler: str = "noop"
    postgres_dsn: str = ""
    source_topic: str = ""
    ledger_topic: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class WorkerResult:
    records: int
    seconds: float
    cpu_seconds: float
    rss_mb: float
    handler_calls: int = 0
    calls_per_batch: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


class Stopwatch:
    """Wall and CPU time of this process between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self._wall: float | None = None
        self._cpu = 0.0
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    @property
    def started(self) -> bool:
        return self._wall is not None

    def start(self) -> None:
        if self._wall is None:
            self._wall = time.perf_counter()
            self._cpu = _cpu_now()

    def stop(self) -> None:
        if self._wall is not None:
            self.seconds = time.perf_counter() - self._wall
            self.cpu_seconds = _cpu_now() - self._cpu

    def result(self, records: int, **extra: Any) -> WorkerResult:
        return WorkerResult(
            records, self.seconds, self.cpu_seconds, peak_rss_mb(), **extra
        )


def _cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MiB.

    Note:
        Not ``ru_maxrss``: Linux carries the parent's peak over a fork and
        exec into it, so every worker would report at least the harness's.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MeasuredConsumer(DeadLetterConsumer):
    """Our consumer, stopping by itself once ``expected`` records are done."""

    def __init__(
        self,
        settings: Settings,
        handler: BatchHandler,
        *,
        expected: int,
        probe: HealthProbe | None = None,
    ):
        super().__init__(settings, handler, probe=probe)
        self.expected = expected
        self.done = 0
        self.stopwatch = Stopwatch()
        self.calls_per_batch: list[int] = []

    @property
    def handler_calls(self) -> int:
        value = self.metrics.registry.get_sample_value(HANDLER_CALLS_METRIC)
        return int(value or 0)

    async def process_batch(self, batch: Sequence[SourceRecord]) -> None:
        self.stopwatch.start()
        before = self.handler_calls
        await super().process_batch(batch)
        self.calls_per_batch.append(self.handler_calls - before)
        self.done += len(batch)
        if self.done >= self.expected:
            self.stopwatch.stop()
            self.request_stop()


def consumer_settings(spec: WorkerSpec) -> Settings:
    return load_settings(
        kafka_bootstrap_servers=spec.bootstrap_servers,
        kafka_topic=spec.topic,
        kafka_group_id=spec.group,
        kafka_dlq_topic=spec.dlq_topic or f"{spec.topic}-dlq",
        kafka_dlq_enabled=spec.dlq_enabled,
        kafka_batch_size=spec.batch_size,
        postgres_dsn=spec.postgres_dsn or None,
        metrics_port=0,
    )


async def run_ours(spec: WorkerSpec) -> WorkerResult:
    settings = consumer_settings(spec)
    writer: PostgresWriter | None = None
    handler: BatchHandler = noop_handler
    probe: HealthProbe | None = None
    if spec.handler == "refuse":
        handler = refusing_handler
    elif spec.handler == "postgres":
        writer = PostgresWriter(settings.require_postgres_dsn())
        await writer.start()
        handler, probe = writer, writer.is_available
    consumer = MeasuredConsumer(settings, handler, expected=spec.records, probe=probe)
    await consumer.start()
    try:
        await consumer.run()
    finally:
        await consumer.stop()
        if writer is not None:
            await writer.close()
    return consumer.stopwatch.result(
        consumer.done,
        handler_calls=consumer.handler_calls,
        calls_per_batch=consumer.calls_per_batch,
    )


async def run_raw_consumer(spec: WorkerSpec) -> WorkerResult:
    """The baseline: aiokafka ``getmany`` and a commit per fetch, nothing else.

    With ``handler="json"`` it also parses every value as JSON: the least
    work any consumer of a JSON stream does, shown for context.
    """
    parse = spec.handler == "json"
    consumer = AIOKafkaConsumer(
        spec.topic,
        bootstrap_servers=spec.bootstrap_servers,
        group_id=spec.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=spec.batch_size,
    )
    await consumer.start()
    stopwatch = Stopwatch()
    done = 0
    try:
        while done < spec.records:
            fetched = await consumer.getmany(
                timeout_ms=POLL_TIMEOUT_MS, max_records=spec.batch_size
            )
            count = sum(len(records) for records in fetched.values())
            if not count:
                continue
            stopwatch.start()
            if parse:
                for records in fetched.values():
                    for record in records:
                        json.loads(record.value)
            await consumer.commit(
                {
                    tp: records[-1].offset + 1
                    for tp, records in fetched.items()
                    if records
                }
            )
            done += count
        stopwatch.stop()
    finally:
        await consumer.stop()
    return stopwatch.result(done)


async def run_raw_producer(spec: WorkerSpec) -> WorkerResult:
    """The baseline: an idempotent ``acks=all`` producer sending given records.

    ``handler`` picks the records: ``dead-letters`` sends the dead letters of
    ``source_topic`` byte for byte, ``originals`` the records a replay of
    them sends (original key, value and headers plus our two headers).
    """
    letters = await read_topic(spec.bootstrap_servers, spec.source_topic, spec.records)
    outgoing = letters if spec.handler == "dead-letters" else originals(letters)
    producer = AIOKafkaProducer(
        bootstrap_servers=spec.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=PUBLISHER_LINGER_MS,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    await producer.start()
    stopwatch = Stopwatch()
    try:
        stopwatch.start()
        deliveries = [
            await producer.send(spec.topic, value=value, key=key, headers=headers)
            for key, value, headers in outgoing
        ]
        await asyncio.gather(*deliveries)
        stopwatch.stop()
    finally:
        await producer.stop()
    return stopwatch.result(len(outgoing))


Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def originals(letters: list[Record]) -> list[Record]:
    records: list[Record] = []
    for offset, (_key, value, _headers) in enumerate(letters):
        # The position only names the dead letter in a header; its length,
        # not its exact value, is what matters to the producer.
        position = DeadLetterPosition("dead-letters", 0, offset)
        record = original_of(parse_envelope(value, position), position)
        records.append((record.key, record.value, record.headers))
    return records


async def run_replay(spec: WorkerSpec) -> WorkerResult:
    """``agent-dlq replay --all --rate 0 --to <topic>``, timed as a whole."""
    settings = load_settings(
        kafka_bootstrap_servers=spec.bootstrap_servers,
        kafka_dlq_topic=spec.source_topic,
        kafka_replay_allowed_topics=spec.topic,
        kafka_replay_ledger_topic=spec.ledger_topic,
    )
    stopwatch = Stopwatch()
    stopwatch.start()
    report = await replay(settings, Selection(), target=spec.topic, rate=None)
    stopwatch.stop()
    return stopwatch.result(report.sent)


async def read_topic(bootstrap_servers: str, topic: str, count: int) -> list[Record]:
    """The first ``count`` records of ``topic``: key, value and headers."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    records: list[Record] = []
    try:
        numbers = await partitions_of({"bootstrap_servers": bootstrap_servers}, topic)
        partitions = [TopicPartition(topic, number) for number in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while len(records) < count:
            fetched = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            for items in fetched.values():
                records.extend(
                    (item.key, item.value, list(item.headers)) for item in items
                )
    finally:
        await consumer.stop()
    return records[:count]


MODES = {
    "ours": run_ours,
    "raw-consumer": run_raw_consumer,
    "raw-producer": run_raw_producer,
    "replay": run_replay,
}


def profiled(spec: WorkerSpec, report: Path) -> WorkerResult:
    """Run the side under pyinstrument; write its call tree to ``report``."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="enabled")
    with profiler:
        result = asyncio.run(MODES[spec.mode](spec))
    report.write_text(profiler.output_text(unicode=True, show_all=False))
    return result


def main(argv: Sequence[str]) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    spec = WorkerSpec(**json.loads(argv[0]))
    if len(argv) > 1:
        result = profiled(spec, Path(argv[1]))
    else:
        result = asyncio.run(MODES[spec.mode](spec))
    print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
