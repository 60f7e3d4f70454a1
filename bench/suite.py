"""The comparisons: topics and data, the sides of each, and their rounds.

Every side reads a topic prepared before any timing starts, from its first
offset, with a consumer group of its own, so all sides of a comparison read
the same bytes. Sides measured in one group alternate round by round (see
``runner.alternate``); a ratio is only ever computed from two samples of the
same round.
"""

from __future__ import annotations

import asyncio
import functools
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from bench import data, jdbc
from bench.postgres import CONNECT_TABLE
from bench.runner import BenchError, Sample, Side, WorkerRunner, alternate
from bench.services import BenchServices, process_cpu_seconds, process_peak_rss_mb
from bench.stats import ComparisonSpec, Target
from bench.watch import StoreWatcher
from bench.worker import WorkerResult, WorkerSpec
from consumer_patch.isolation import isolation_call_bound
from consumer_patch.topics import (
    TopicSpec,
    dead_letter_topic,
    ensure_topics,
    partitions_of,
)
from consumer_patch.topics import source_topic as source_topic_spec

DRAIN_TIMEOUT_SECONDS = 300.0
CONNECTOR_GONE_TIMEOUT_SECONDS = 30.0
METADATA_ATTEMPTS = 100
# Enough batches for a steady rate; small batch sizes read fewer records, or
# batch size 10 alone would take as long as the rest of the sweep.
SWEEP_BATCHES = 400
OUR_TABLE = "agent_actions"

OURS = "our consumer, DLQ on"
OURS_DLQ_OFF = "our consumer, DLQ off"
OURS_POISON = "our consumer, 1 % poison"
RAW_CONSUMER = "raw aiokafka getmany + commit"
RAW_CONSUMER_JSON = "raw aiokafka loop + json.loads"
OURS_ALL_POISON = "our consumer, 100 % poison"
RAW_PRODUCER_LETTERS = "raw producer, the dead letters"
REPLAY = "agent-dlq replay"
RAW_PRODUCER_ORIGINALS = "raw producer, the replayed records"
OURS_POSTGRES = "our consumer into PostgreSQL"
CONNECT_JDBC = "Kafka Connect JDBC sink"

COMPARISONS = (
    ComparisonSpec(
        "consumer_vs_raw",
        "clean, no-op handler: ours / raw aiokafka loop",
        OURS,
        RAW_CONSUMER,
        Target(0.90),
    ),
    ComparisonSpec(
        "consumer_vs_raw_json",
        "clean, no-op handler: ours / raw loop that parses JSON",
        OURS,
        RAW_CONSUMER_JSON,
        None,
    ),
    ComparisonSpec(
        "dlq_on_vs_off",
        "clean: ours, DLQ on / DLQ off",
        OURS,
        OURS_DLQ_OFF,
        Target(0.95),
    ),
    ComparisonSpec(
        "poison_vs_clean",
        "ours: 1 % poison spread / clean",
        OURS_POISON,
        OURS,
        Target(0.85),
    ),
    ComparisonSpec(
        "dead_letter_vs_producer",
        "100 % poison: ours / raw producer, same bytes",
        OURS_ALL_POISON,
        RAW_PRODUCER_LETTERS,
        Target(0.50),
    ),
    ComparisonSpec(
        "postgres_vs_connect",
        "to PostgreSQL, 1 % undecodable: ours / Connect",
        OURS_POSTGRES,
        CONNECT_JDBC,
        Target(1.0),
    ),
    ComparisonSpec(
        "replay_vs_producer",
        "replay / raw producer, same records",
        REPLAY,
        RAW_PRODUCER_ORIGINALS,
        Target(0.70),
    ),
)
RSS_TARGET = Target(150.0, at_least=False)
RSS_BATCH_SIZE = 500


@dataclass(frozen=True)
class Profile:
    """How much data and how many rounds a run uses."""

    name: str
    rounds: int
    sweep_rounds: int
    clean_records: int
    all_poison_records: int
    postgres_records: int
    sweep_records: int
    batch_size: int = 500
    sweep_ratios: tuple[float, ...] = (0.0, 0.001, 0.01, 0.05, 0.10)
    sweep_batch_sizes: tuple[int, ...] = (10, 100, 500, 2000)
    isolation_batch_sizes: tuple[int, ...] = (16, 128, 500)
    isolation_poison: tuple[int, ...] = (1, 2, 4, 8)
    isolation_batches: int = 4

    def check(self) -> None:
        """Batches must divide the streams: a last, partial batch would wait
        out the batch timeout and time the timeout, not the consumer."""
        for records, sizes in (
            (self.clean_records, (self.batch_size,)),
            (self.sweep_records, self.sweep_batch_sizes),
        ):
            for size in sizes:
                if records % size:
                    raise ValueError(f"{records} records do not split in {size}s")


PROFILES = {
    "full": Profile(
        "full",
        rounds=5,
        sweep_rounds=3,
        clean_records=100_000,
        all_poison_records=20_000,
        postgres_records=50_000,
        sweep_records=40_000,
    ),
    "quick": Profile(
        "quick",
        rounds=2,
        sweep_rounds=1,
        clean_records=2_000,
        all_poison_records=200,
        postgres_records=1_000,
        sweep_records=2_000,
        sweep_ratios=(0.0, 0.05),
        sweep_batch_sizes=(100, 500),
        isolation_batch_sizes=(16,),
        isolation_poison=(1, 2),
        isolation_batches=1,
    ),
}


@dataclass(frozen=True)
class IsolationResult:
    poison: int
    batch_size: int
    calls: tuple[int, ...]

    @property
    def bound(self) -> float:
        return isolation_call_bound(self.poison, self.batch_size)

    @property
    def met(self) -> bool:
        return max(self.calls) <= self.bound

    def as_json(self) -> dict[str, Any]:
        return {
            "poison": self.poison,
            "batch_size": self.batch_size,
            "batches": len(self.calls),
            "max_calls": max(self.calls),
            "mean_calls": round(sum(self.calls) / len(self.calls), 2),
            "bound": round(self.bound, 2),
            "met": self.met,
        }


@dataclass
class Suite:
    profile: Profile
    services: BenchServices
    progress: Callable[[str], None]
    run_id: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}")
    samples: list[Sample] = field(default_factory=list)
    isolation: list[IsolationResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    topics: list[str] = field(default_factory=list)
    postgres_poison: int = 0

    def __post_init__(self) -> None:
        self.runner = WorkerRunner(self.services.worker_log)

    @property
    def bootstrap(self) -> str:
        return self.services.bootstrap_servers

    def topic(self, name: str) -> str:
        return f"{self.run_id}-{name}"

    def group(self) -> str:
        return f"{self.run_id}-group-{uuid.uuid4().hex[:8]}"

    # -- data ------------------------------------------------------------

    async def create(self, *specs: TopicSpec) -> None:
        await ensure_topics(self.bootstrap, specs)
        self.topics.extend(spec.name for spec in specs)

    async def fill(self, name: str, stream: data.Stream) -> None:
        topic = self.topic(name)
        await self.create(source_topic_spec(topic))
        await self.produce(topic, stream)

    async def produce(self, topic: str, stream: data.Stream) -> None:
        # A topic just created may not be in the broker's metadata yet.
        options: dict[str, object] = {"bootstrap_servers": self.bootstrap}
        for _ in range(METADATA_ATTEMPTS):
            if await partitions_of(options, topic):
                break
            await asyncio.sleep(0.1)
        await data.produce(self.bootstrap, topic, stream)

    async def prepare(self) -> None:
        """Create the topics and write every stream before any timing."""
        profile = self.profile
        self.progress(f"preparing topics and data (run {self.run_id})")
        await self.create(
            *(
                dead_letter_topic(self.topic(name))
                for name in (
                    "dlq",
                    "dlq-source",
                    "dlq-all-poison",
                    "dlq-postgres",
                    "connect-dlq",
                    "dlq-isolation",
                    "raw-sink",
                )
            ),
            source_topic_spec(self.topic("replay-target")),
        )
        await self.fill("clean", data.make_stream(profile.clean_records))
        await self.fill("poison", data.make_stream(profile.clean_records, 0.01))
        await self.fill(
            "all-poison",
            data.make_stream(profile.all_poison_records, 1.0, data.DECODE_FAILURES),
        )
        postgres = data.make_stream(profile.postgres_records, 0.01, data.UNDECODABLE)
        self.postgres_poison = postgres.poison_count
        await self.fill("postgres", postgres)
        await self.fill("sweep-clean", data.make_stream(profile.sweep_records))
        for ratio in profile.sweep_ratios:
            if ratio > 0:
                stream = data.make_stream(profile.sweep_records, ratio)
                await self.fill(f"sweep-poison-{ratio:g}", stream)

        # The dead letters the raw producer and replay send: written once by
        # our consumer, so the baselines send exactly the bytes it wrote.
        self.progress("writing the dead letters the producer baselines send")
        result = await self.runner.run(
            self.ours_spec(
                "all-poison", profile.all_poison_records, dlq=self.topic("dlq-source")
            )
        )
        self.check_count(result, profile.all_poison_records, "the dead-letter source")

    async def cleanup(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.delete_topics(sorted(set(self.topics)))
        finally:
            await admin.close()

    # -- sides -----------------------------------------------------------

    def ours_spec(
        self,
        name: str,
        records: int,
        *,
        dlq: str | None = None,
        batch_size: int | None = None,
        dlq_enabled: bool = True,
        handler: str = "refuse",
    ) -> WorkerSpec:
        return WorkerSpec(
            "ours",
            self.bootstrap,
            self.topic(name),
            records,
            group=self.group(),
            batch_size=batch_size or self.profile.batch_size,
            dlq_topic=dlq or self.topic("dlq"),
            dlq_enabled=dlq_enabled,
            handler=handler,
            postgres_dsn=self.services.postgres.dsn,
        )

    def raw_spec(
        self, name: str, records: int, batch_size: int, handler: str = "none"
    ) -> WorkerSpec:
        return WorkerSpec(
            "raw-consumer",
            self.bootstrap,
            self.topic(name),
            records,
            group=self.group(),
            batch_size=batch_size,
            handler=handler,
        )

    def worker_side(
        self, side: str, spec: Callable[[], WorkerSpec], **params: Any
    ) -> Side:
        """A side run by a worker process; ``spec`` makes each run's spec
        (each run gets a consumer group of its own)."""

        async def run(round_number: int) -> Sample:
            made = spec()
            result = await self.runner.run(made)
            self.check_count(result, made.records, side)
            return Sample(
                side,
                round_number,
                result.records,
                result.seconds,
                result.cpu_seconds,
                result.rss_mb,
                {"batch_size": made.batch_size, **params},
            )

        return run

    @staticmethod
    def check_count(result: WorkerResult, expected: int, side: str) -> None:
        # A raw loop may overshoot by part of a fetch when it reads only the
        # first records of a topic; the rate counts what it read.
        if result.records < expected:
            raise BenchError(f"{side}: {result.records} records, not {expected}")

    # -- the comparisons -------------------------------------------------

    async def consumer_group(self) -> None:
        """Our consumer (DLQ on, off, 1 % poison) and the raw aiokafka loop."""
        profile = self.profile
        n, size = profile.clean_records, profile.batch_size
        self.progress("our consumer against the raw aiokafka loop, DLQ on/off, poison")
        ours = functools.partial(self.ours_spec, records=n)
        sides = {
            RAW_CONSUMER: self.worker_side(
                RAW_CONSUMER, functools.partial(self.raw_spec, "clean", n, size)
            ),
            RAW_CONSUMER_JSON: self.worker_side(
                RAW_CONSUMER_JSON,
                functools.partial(self.raw_spec, "clean", n, size, "json"),
            ),
            OURS: self.worker_side(OURS, functools.partial(ours, "clean")),
            OURS_DLQ_OFF: self.worker_side(
                OURS_DLQ_OFF, functools.partial(ours, "clean", dlq_enabled=False)
            ),
            OURS_POISON: self.worker_side(
                OURS_POISON, functools.partial(ours, "poison")
            ),
        }
        self.samples += await alternate(sides, profile.rounds, self.progress)

    async def dead_letter_group(self) -> None:
        """Draining a stream of poison only, against a raw producer."""
        m = self.profile.all_poison_records
        self.progress("dead-lettering a stream of poison against a raw producer")
        ours = functools.partial(
            self.ours_spec, "all-poison", m, dlq=self.topic("dlq-all-poison")
        )
        raw = functools.partial(
            WorkerSpec,
            "raw-producer",
            self.bootstrap,
            self.topic("raw-sink"),
            m,
            handler="dead-letters",
            source_topic=self.topic("dlq-source"),
        )
        sides = {
            OURS_ALL_POISON: self.worker_side(OURS_ALL_POISON, ours),
            RAW_PRODUCER_LETTERS: self.worker_side(RAW_PRODUCER_LETTERS, raw),
        }
        self.samples += await alternate(sides, self.profile.rounds, self.progress)

    async def replay_group(self) -> None:
        """``agent-dlq replay`` against a raw producer sending the same records."""
        m = self.profile.all_poison_records
        self.progress("replay against a raw producer")

        def replay_spec() -> WorkerSpec:
            # A fresh ledger per run, or every run after the first skips it all.
            ledger = self.topic(f"ledger-{uuid.uuid4().hex[:8]}")
            self.topics.append(ledger)
            return WorkerSpec(
                "replay",
                self.bootstrap,
                self.topic("replay-target"),
                m,
                source_topic=self.topic("dlq-source"),
                ledger_topic=ledger,
            )

        raw = functools.partial(
            WorkerSpec,
            "raw-producer",
            self.bootstrap,
            self.topic("replay-target"),
            m,
            handler="originals",
            source_topic=self.topic("dlq-source"),
        )
        sides = {
            REPLAY: self.worker_side(REPLAY, replay_spec),
            RAW_PRODUCER_ORIGINALS: self.worker_side(RAW_PRODUCER_ORIGINALS, raw),
        }
        self.samples += await alternate(sides, self.profile.rounds, self.progress)

    async def postgres_group(self) -> None:
        """Into PostgreSQL: our consumer against Kafka Connect's JDBC sink."""
        if self.services.connect is None:
            self.skipped["postgres_vs_connect"] = (
                self.services.connect_problem or "Kafka Connect was not started"
            )
            return
        self.progress("into PostgreSQL: our consumer against Kafka Connect JDBC")
        sides = {OURS_POSTGRES: self.ours_postgres, CONNECT_JDBC: self.connect_jdbc}
        self.samples += await alternate(sides, self.profile.rounds, self.progress)

    async def ours_postgres(self, round_number: int) -> Sample:
        n = self.profile.postgres_records
        postgres = self.services.postgres
        await postgres.truncate(OUR_TABLE)
        spec = self.ours_spec(
            "postgres", n, dlq=self.topic("dlq-postgres"), handler="postgres"
        )
        async with StoreWatcher(
            postgres.dsn, OUR_TABLE, self.bootstrap, spec.dlq_topic
        ) as watcher:
            process = await self.runner.start(spec)

            async def still_running() -> str | None:
                if process.returncode is None:
                    return None
                return f"the consumer exited with {process.returncode}"

            drained = await watcher.wait_drained(
                n, DRAIN_TIMEOUT_SECONDS, still_running
            )
            result = await self.runner.finish(process)
        self.check_split(OURS_POSTGRES, drained.rows, drained.dead_letters, n)
        return Sample(
            OURS_POSTGRES,
            round_number,
            drained.records,
            drained.seconds,
            result.cpu_seconds,
            result.rss_mb,
            {"batch_size": spec.batch_size, "worker_seconds": result.seconds},
        )

    async def connect_jdbc(self, round_number: int) -> Sample:
        client, pid = self.services.connect, self.services.connect_pid
        if client is None or pid is None:
            raise BenchError("Kafka Connect is not running")
        n = self.profile.postgres_records
        postgres = self.services.postgres
        await postgres.truncate(CONNECT_TABLE)
        name = f"{self.run_id}-jdbc-{round_number}"
        config = jdbc.connector_config(
            self.topic("postgres"),
            self.topic("connect-dlq"),
            postgres.jdbc_url,
            CONNECT_TABLE,
            self.profile.batch_size,
        )

        async def still_running() -> str | None:
            state = await asyncio.to_thread(client.status, name)
            return None if state is None else state.failure()

        async with StoreWatcher(
            postgres.dsn, CONNECT_TABLE, self.bootstrap, self.topic("connect-dlq")
        ) as watcher:
            cpu_before = process_cpu_seconds(pid)
            await asyncio.to_thread(client.put_connector, name, config)
            try:
                drained = await watcher.wait_drained(
                    n, DRAIN_TIMEOUT_SECONDS, still_running
                )
                cpu = process_cpu_seconds(pid) - cpu_before
            finally:
                await self.remove_connector(name)
        self.check_split(CONNECT_JDBC, drained.rows, drained.dead_letters, n)
        return Sample(
            CONNECT_JDBC,
            round_number,
            drained.records,
            drained.seconds,
            cpu,
            process_peak_rss_mb(pid),
            {"batch_size": self.profile.batch_size},
        )

    async def remove_connector(self, name: str) -> None:
        client = self.services.connect
        if client is None:
            return
        await asyncio.to_thread(client.delete_connector, name)
        deadline = asyncio.get_running_loop().time() + CONNECTOR_GONE_TIMEOUT_SECONDS
        while name in await asyncio.to_thread(client.connector_names):
            if asyncio.get_running_loop().time() > deadline:
                raise BenchError(f"connector {name} is still there after deleting it")
            await asyncio.sleep(0.2)

    def check_split(self, side: str, rows: int, dead_letters: int, total: int) -> None:
        poison = self.postgres_poison
        if (rows, dead_letters) != (total - poison, poison):
            raise BenchError(
                f"{side}: {rows} rows and {dead_letters} dead letters, expected "
                f"{total - poison} and {poison}"
            )

    async def isolation_counts(self) -> None:
        """Handler calls bisection needs for k refused records in a batch of n."""
        profile = self.profile
        self.progress("counting the handler calls that isolate poison records")
        for size in profile.isolation_batch_sizes:
            layout: list[int] = []
            stream = data.Stream([], Counter())
            rng = random.Random(size)
            for poison in profile.isolation_poison:
                if poison > size:
                    continue
                for _ in range(profile.isolation_batches):
                    at = set(rng.sample(range(size), poison))
                    batch = data.batch_with_poison(size, at, len(stream))
                    stream.records.extend(batch.records)
                    layout.append(poison)
            name = f"isolation-{size}"
            await self.create(TopicSpec(self.topic(name), 1, 1))
            await self.produce(self.topic(name), stream)
            spec = self.ours_spec(
                name, len(stream), dlq=self.topic("dlq-isolation"), batch_size=size
            )
            result = await self.runner.run(spec)
            if len(result.calls_per_batch) != len(layout):
                raise BenchError(
                    f"isolation at n={size}: {len(result.calls_per_batch)} batches, "
                    f"expected {len(layout)}"
                )
            for poison in sorted(set(layout)):
                calls = tuple(
                    count
                    for count, k in zip(result.calls_per_batch, layout, strict=True)
                    if k == poison
                )
                self.isolation.append(IsolationResult(poison, size, calls))

    async def sweeps(self) -> None:
        """Rate against poison ratio and against batch size, for the plot."""
        profile = self.profile
        n = profile.sweep_records
        self.progress("sweeping poison ratio and batch size")
        sides: dict[str, Side] = {}
        for ratio in profile.sweep_ratios:
            topic = "sweep-clean" if ratio == 0 else f"sweep-poison-{ratio:g}"
            side = f"sweep: ours, poison {ratio:g}"
            sides[side] = self.worker_side(
                side,
                functools.partial(self.ours_spec, topic, n),
                sweep="poison_ratio",
                poison_ratio=ratio,
            )
        for size in profile.sweep_batch_sizes:
            ours = f"sweep: ours, batch {size}"
            raw = f"sweep: raw, batch {size}"
            records = min(n, size * SWEEP_BATCHES)
            sides[ours] = self.worker_side(
                ours,
                functools.partial(
                    self.ours_spec, "sweep-clean", records, batch_size=size
                ),
                sweep="batch_size",
                consumer="ours",
            )
            sides[raw] = self.worker_side(
                raw,
                functools.partial(self.raw_spec, "sweep-clean", records, size),
                sweep="batch_size",
                consumer="raw",
            )
        self.samples += await alternate(sides, profile.sweep_rounds, self.progress)

    def peak_rss(self) -> float | None:
        """The highest peak RSS of our consumer at the RSS target's batch size."""
        values = [
            sample.rss_mb
            for sample in self.samples
            if sample.side.startswith("our consumer")
            and sample.params.get("batch_size") == RSS_BATCH_SIZE
            and sample.rss_mb is not None
        ]
        return max(values) if values else None
