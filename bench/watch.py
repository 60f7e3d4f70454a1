"""Time a pipeline from outside: rows in PostgreSQL plus dead letters in Kafka.

Both sides of the PostgreSQL comparison (our consumer, Kafka Connect) are
timed by the same observer, polling every ``POLL_SECONDS``: the clock starts
when the first record has arrived (so start-up is left out on both sides)
and stops when every record is either a row or a dead letter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from bench.runner import BenchError
from consumer_patch.topics import partitions_of

POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Drained:
    """When the first records and the last one were seen."""

    first_seen: float
    first_count: int
    done: float
    rows: int
    dead_letters: int

    @property
    def records(self) -> int:
        return self.rows + self.dead_letters - self.first_count

    @property
    def seconds(self) -> float:
        return self.done - self.first_seen


class StoreWatcher:
    """Counts the rows of ``table`` and the records added to ``dead_letter_topic``."""

    def __init__(
        self, dsn: str, table: str, bootstrap_servers: str, dead_letter_topic: str
    ):
        self._dsn = dsn
        self._table = table
        self._bootstrap = bootstrap_servers
        self._topic = dead_letter_topic
        self._partitions: list[TopicPartition] = []
        self._baseline = 0
        self._connection: asyncpg.Connection | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> StoreWatcher:
        self._connection = await asyncpg.connect(self._dsn)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False
        )
        await self._consumer.start()
        numbers = await partitions_of(
            {"bootstrap_servers": self._bootstrap}, self._topic
        )
        self._partitions = [TopicPartition(self._topic, n) for n in numbers]
        self._baseline = await self._dead_letter_end()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._connection is not None:
            await self._connection.close()

    async def counts(self) -> tuple[int, int]:
        """Rows in the table, and dead letters written since entering."""
        if self._connection is None:
            raise RuntimeError("StoreWatcher is used outside `async with`")
        rows = await self._connection.fetchval(f"SELECT count(*) FROM {self._table}")
        return int(rows), await self._dead_letter_end() - self._baseline

    async def _dead_letter_end(self) -> int:
        if self._consumer is None:
            raise RuntimeError("StoreWatcher is used outside `async with`")
        ends = await self._consumer.end_offsets(self._partitions)
        return sum(ends.values())

    async def wait_drained(
        self,
        expected: int,
        wait_seconds: float,
        still_running: Callable[[], Awaitable[str | None]],
    ) -> Drained:
        """Poll until ``expected`` records are rows or dead letters.

        Args:
            still_running: returns None while the side runs, else why it
                stopped; asked about once a second.

        Raises:
            BenchError: the side stopped, or the timeout passed.
        """
        deadline = time.monotonic() + wait_seconds
        first: tuple[float, int] | None = None
        polls = 0
        while True:
            rows, dead = await self.counts()
            now = time.perf_counter()
            if first is None and rows + dead > 0:
                first = (now, rows + dead)
            if rows + dead >= expected and first is not None:
                return Drained(first[0], first[1], now, rows, dead)
            polls += 1
            if polls % round(1 / POLL_SECONDS) == 0:
                problem = await still_running()
                if problem is not None:
                    raise BenchError(f"stopped after {rows + dead} records: {problem}")
            if time.monotonic() > deadline:
                raise BenchError(
                    f"only {rows + dead} of {expected} records arrived "
                    f"in {wait_seconds:.0f}s"
                )
            await asyncio.sleep(POLL_SECONDS)
