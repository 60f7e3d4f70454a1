"""Read the dead-letter topic (or the replay ledger) from one offset to another.

Note:
    Reads use ``isolation_level=read_committed``: dead letters of an aborted
    transaction are never shown, counted or replayed. Each read captures the
    end offsets (the last stable offsets) when it starts and stops there, so
    commands terminate while the consumer keeps writing. Partitions are
    assigned, never subscribed: no consumer group is joined and no offset is
    committed by reading.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from consumer_patch import headers
from consumer_patch.errors import EnvelopeError
from consumer_patch.operator.errors import OperatorError
from consumer_patch.operator.pacing import Progress
from consumer_patch.operator.selection import Position, Selection, failed_at_of
from consumer_patch.republish import (
    DeadLetterPosition,
    check_envelope,
    parse_envelope,
)
from consumer_patch.settings import Settings
from consumer_patch.topics import partitions_of

logger = logging.getLogger(__name__)

CLIENT_ID = "agent-dlq-operator"
FETCH_TIMEOUT_MS = 500
FETCH_MAX_RECORDS = 500
# A read that gets nothing for this long while records remain gives up, so a
# command never hangs on an unreachable broker.
STALL_SECONDS = 30.0
# Seeking by time uses record timestamps, which the producer sets just after
# the envelope's failed_at; the margin covers clock steps between the two.
SEEK_MARGIN = timedelta(minutes=5)
UNREADABLE = "(unreadable)"
# What scanning needs of an envelope; replay and show validate the whole schema.
SCANNED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "dead_letter_id": str,
    "error_type": str,
    "error_category": str,
    "failed_at": str,
    "original_topic": str,
    "original_partition": int,
    "original_offset": int,
    "retry_count": int,
    "correlation_id": (str, type(None)),
}


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record of the dead-letter topic, with its envelope when it has one.

    ``problem`` says why ``envelope`` is None: the value is not a valid
    envelope (written by something else, or corrupted).
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    envelope: dict[str, Any] | None
    problem: str | None

    @property
    def position(self) -> Position:
        return Position(self.partition, self.offset)

    @property
    def pointer(self) -> DeadLetterPosition:
        return DeadLetterPosition(self.topic, self.partition, self.offset)

    @property
    def error_type(self) -> str:
        if self.envelope is not None:
            return str(self.envelope["error_type"])
        return self.header(headers.ERROR_TYPE) or UNREADABLE

    def header(self, name: str) -> str | None:
        for key, raw in reversed(self.headers):
            if key == name:
                return raw.decode("utf-8", errors="replace")
        return None


@dataclass(frozen=True)
class RawRecord:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def client_options(settings: Settings) -> dict[str, Any]:
    return {**settings.kafka_client_options(), "client_id": CLIENT_ID}


@asynccontextmanager
async def kafka_errors(action: str) -> AsyncIterator[None]:
    """Turn the Kafka client's errors into an ``OperatorError`` naming ``action``."""
    try:
        yield
    except KafkaError as error:
        detail = str(error) or type(error).__name__
        raise OperatorError(f"{action} failed: {detail}") from None


class TopicReader:
    """Reads committed records of one topic by partition and offset range.

    Args:
        group: consumer group whose committed offsets ``committed`` reports and
            ``commit`` moves (the triage group); reading never joins it.
    """

    def __init__(self, settings: Settings, topic: str, group: str | None = None):
        self._settings = settings
        self.topic = topic
        self._group = group
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Self:
        consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=self._settings.kafka_dlq_max_message_bytes,
        )
        try:
            async with kafka_errors(
                f"connecting to Kafka at {self._settings.kafka_bootstrap_servers}"
            ):
                await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the reader is not started")
        return self._consumer

    def partition(self, number: int) -> TopicPartition:
        return TopicPartition(self.topic, number)

    async def partitions(self) -> list[int]:
        """The topic's partitions.

        Raises:
            OperatorError: the topic does not exist.
        """
        async with kafka_errors(f"reading the metadata of {self.topic}"):
            numbers = await partitions_of(client_options(self._settings), self.topic)
        if not numbers:
            raise OperatorError(
                f"topic {self.topic} does not exist on "
                f"{self._settings.kafka_bootstrap_servers}"
            )
        return numbers

    async def bounds(self, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """Per partition, the first retained offset and the last stable offset."""
        tps = [self.partition(number) for number in partitions]
        async with kafka_errors(f"reading the offsets of {self.topic}"):
            first = await self.consumer.beginning_offsets(tps)
            last = await self.consumer.end_offsets(tps)
        return {tp.partition: (first[tp], last[tp]) for tp in tps}

    async def offsets_at(
        self, partitions: list[int], moment: datetime
    ) -> dict[int, int | None]:
        """Per partition, the first offset whose timestamp is at or after
        ``moment``; None when there is none."""
        stamp = max(int(moment.timestamp() * 1000), 0)
        async with kafka_errors(f"looking up {self.topic} by time"):
            found = await self.consumer.offsets_for_times(
                {self.partition(number): stamp for number in partitions}
            )
        return {
            tp.partition: (None if entry is None else entry.offset)
            for tp, entry in found.items()
        }

    async def committed(self, partitions: list[int]) -> dict[int, int | None]:
        """The group's committed offset per partition (None: never committed)."""
        result: dict[int, int | None] = {}
        async with kafka_errors(f"reading the offsets of group {self._group}"):
            for number in partitions:
                result[number] = await self.consumer.committed(self.partition(number))
        return result

    async def commit(self, offsets: Mapping[int, int]) -> None:
        tps = {self.partition(number): offset for number, offset in offsets.items()}
        self.consumer.assign(list(tps))
        async with kafka_errors(f"committing offsets of group {self._group}"):
            await self.consumer.commit(tps)

    async def read(
        self,
        starts: Mapping[int, int],
        ends: Mapping[int, int],
        progress: Progress | None = None,
    ) -> AsyncIterator[RawRecord]:
        """Records from ``starts`` (included) to ``ends`` (excluded) per partition.

        Raises:
            OperatorError: nothing arrived for ``STALL_SECONDS`` while records
                remained (broker unreachable, partition offline).
        """
        consumer = self.consumer
        wanted = {
            self.partition(number): (starts[number], ends[number])
            for number in starts
            if starts[number] < ends[number]
        }
        consumer.assign(list(wanted))
        for tp, (start, _end) in wanted.items():
            consumer.seek(tp, start)
        remaining = set(wanted)
        last_progress = time.monotonic()
        while remaining:
            async with kafka_errors(f"reading {self.topic}"):
                batch = await consumer.getmany(
                    *remaining,
                    timeout_ms=FETCH_TIMEOUT_MS,
                    max_records=FETCH_MAX_RECORDS,
                )
            for tp, records in batch.items():
                end = wanted[tp][1]
                for record in records:
                    if record.offset >= end:
                        break
                    if progress is not None:
                        progress.advance()
                    yield _raw(record)
            advanced = await self._finished(remaining, wanted)
            if batch or advanced:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > STALL_SECONDS:
                raise OperatorError(
                    f"reading {self.topic} made no progress for {STALL_SECONDS:.0f}s "
                    f"on partitions {sorted(tp.partition for tp in remaining)}"
                )

    async def _finished(
        self,
        remaining: set[TopicPartition],
        wanted: Mapping[TopicPartition, tuple[int, int]],
    ) -> bool:
        # The position moves past transaction markers and aborted records
        # too, so comparing it with the end offset tells when a partition is
        # done even when its last offsets hold no readable record.
        done = False
        for tp in list(remaining):
            if await self.consumer.position(tp) >= wanted[tp][1]:
                remaining.discard(tp)
                self.consumer.pause(tp)
                done = True
        return done


class DeadLetterReader(TopicReader):
    """Reads dead letters, parsed, from the dead-letter topic."""

    def __init__(self, settings: Settings):
        super().__init__(
            settings, settings.kafka_dlq_topic, settings.kafka_dlq_triage_group
        )

    async def plan(
        self,
        selection: Selection,
        *,
        also_since: datetime | None = None,
        also_from: Mapping[int, int] | None = None,
    ) -> tuple[dict[int, int], dict[int, int]]:
        """Start and end offsets that cover ``selection``.

        Args:
            also_since: read from this time on too (earlier than the selection).
            also_from: read from these offsets on too (e.g. the triage group's).
        """
        numbers = [
            number
            for number in await self.partitions()
            if selection.wants_partition(number)
        ]
        bounds = await self.bounds(numbers)
        starts = {number: first for number, (first, _last) in bounds.items()}
        ends = {number: last for number, (_first, last) in bounds.items()}
        if selection.since is not None:
            since = selection.since
            if also_since is not None and also_since < since:
                since = also_since
            by_time = await self.offsets_at(numbers, since - SEEK_MARGIN)
            for number, offset in by_time.items():
                at_time = ends[number] if offset is None else offset
                starts[number] = max(starts[number], at_time)
        for number, offset in (also_from or {}).items():
            if number in starts:
                starts[number] = max(bounds[number][0], min(starts[number], offset))
        if selection.offsets.first is not None:
            for number in starts:
                starts[number] = max(starts[number], selection.offsets.first)
        if selection.offsets.last is not None:
            for number in ends:
                ends[number] = min(ends[number], selection.offsets.last + 1)
        return starts, ends

    async def dead_letters(
        self,
        starts: Mapping[int, int],
        ends: Mapping[int, int],
        progress: Progress | None = None,
    ) -> AsyncIterator[DeadLetterRecord]:
        async for raw in self.read(starts, ends, progress):
            yield as_dead_letter(self.topic, raw)

    async def select(
        self, selection: Selection, progress_label: str | None = None
    ) -> list[DeadLetterRecord]:
        """Every readable dead letter that matches ``selection``, in topic order.

        Records that are not valid envelopes match no filter but the position
        ones; they are included only when the selection has no other filter.
        """
        # The whole selection is held in memory (list sorts it); replay
        # streams it with ``matching`` instead.
        starts, ends = await self.plan(selection)
        return [
            letter
            async for letter in self.matching(selection, starts, ends, progress_label)
        ]

    async def matching(
        self,
        selection: Selection,
        starts: Mapping[int, int],
        ends: Mapping[int, int],
        progress_label: str | None = None,
    ) -> AsyncIterator[DeadLetterRecord]:
        """The dead letters between ``starts`` and ``ends`` (from ``plan``)
        that match ``selection``, one at a time, in order per partition."""
        progress = _progress_for(progress_label, starts, ends)
        try:
            async for letter in self.dead_letters(starts, ends, progress):
                if matches(selection, letter):
                    yield letter
        finally:
            if progress is not None:
                progress.close()

    async def one(self, position: Position) -> DeadLetterRecord:
        """The dead letter at ``position``.

        Raises:
            OperatorError: the partition does not exist, the offset is not
                retained, or it holds no committed record.
        """
        numbers = await self.partitions()
        if position.partition not in numbers:
            raise OperatorError(
                f"{self.topic} has no partition {position.partition} "
                f"(partitions: {', '.join(map(str, numbers))})"
            )
        first, last = (await self.bounds([position.partition]))[position.partition]
        if not first <= position.offset < last:
            raise OperatorError(
                f"no dead letter at {position}: partition {position.partition} of "
                f"{self.topic} holds offsets {first} to {last - 1}"
                if first < last
                else f"no dead letter at {position}: partition "
                f"{position.partition} of {self.topic} is empty"
            )
        found = [
            letter
            async for letter in self.dead_letters(
                {position.partition: position.offset},
                {position.partition: position.offset + 1},
            )
        ]
        if not found:
            raise OperatorError(
                f"no dead letter at {position}: the offset holds a transaction "
                "marker or an aborted record"
            )
        return validated(found[0])


def matches(selection: Selection, letter: DeadLetterRecord) -> bool:
    if not selection.wants_position(letter.partition, letter.offset):
        return False
    if letter.envelope is None:
        return (
            Selection(partitions=selection.partitions, offsets=selection.offsets)
            == selection
        )
    return selection.matches(letter.envelope)


def as_dead_letter(
    topic: str, raw: RawRecord, *, strict: bool = False
) -> DeadLetterRecord:
    """The record as a dead letter; ``strict`` validates it against the schema.

    Note:
        Scanning checks only the fields the filters and summaries read:
        schema validation costs about 40 times the JSON parsing and would
        bound every scan at roughly a thousand records a second. Replay and
        ``show`` validate strictly (``parse_envelope``) what they use.
    """
    position = DeadLetterPosition(topic, raw.partition, raw.offset)
    envelope: dict[str, Any] | None = None
    problem: str | None = None
    try:
        if strict:
            envelope = parse_envelope(raw.value, position)
        else:
            envelope = _scanned_envelope(raw.value, position)
    except EnvelopeError as error:
        problem = str(error)
    return DeadLetterRecord(
        topic=topic,
        partition=raw.partition,
        offset=raw.offset,
        timestamp_ms=raw.timestamp_ms,
        key=raw.key,
        value=raw.value,
        headers=raw.headers,
        envelope=envelope,
        problem=problem,
    )


def validated(letter: DeadLetterRecord) -> DeadLetterRecord:
    """The same dead letter, validated against the envelope schema.

    The envelope the scan parsed is validated as it is (parsing it again
    cost as much as the scan); only one the scan refused is parsed again,
    for the strict parser's more precise reason.
    """
    if letter.envelope is not None:
        position = DeadLetterPosition(letter.topic, letter.partition, letter.offset)
        try:
            check_envelope(letter.envelope, position)
        except EnvelopeError as error:
            return dataclasses.replace(letter, envelope=None, problem=str(error))
        return letter
    raw = RawRecord(
        letter.partition,
        letter.offset,
        letter.timestamp_ms,
        letter.key,
        letter.value,
        letter.headers,
    )
    return as_dead_letter(letter.topic, raw, strict=True)


def _scanned_envelope(
    value: bytes | None, position: DeadLetterPosition
) -> dict[str, Any]:
    if value is None:
        raise EnvelopeError(f"dead letter {position} has a null value")
    try:
        envelope = json.loads(value)
    except ValueError as error:
        raise EnvelopeError(f"dead letter {position} is not JSON: {error}") from None
    if not isinstance(envelope, dict):
        raise EnvelopeError(f"dead letter {position} is not a JSON object")
    for name, kind in SCANNED_FIELDS.items():
        if not isinstance(envelope.get(name), kind):
            raise EnvelopeError(
                f"dead letter {position} is not a valid envelope: {name} is "
                "missing or of the wrong type"
            )
    try:
        failed_at_of(envelope)
    except ValueError:
        raise EnvelopeError(
            f"dead letter {position} is not a valid envelope: failed_at is not a "
            "date-time"
        ) from None
    return envelope


def _raw(record: Any) -> RawRecord:
    return RawRecord(
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value,
        headers=tuple(
            (name, raw if raw is not None else b"") for name, raw in record.headers
        ),
    )


def _progress_for(
    label: str | None, starts: Mapping[int, int], ends: Mapping[int, int]
) -> Progress | None:
    if label is None:
        return None
    total = sum(max(ends[number] - starts[number], 0) for number in starts)
    return Progress(label, total)
