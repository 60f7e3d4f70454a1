"""The redrive worker: transient dead letters go back to their topic, later.

It reads the dead-letter topic in its own consumer group. Each dead letter is
either *redriven* (re-published to its original topic with its original key,
value and headers, the retry count and a pointer to the dead letter), left
*waiting* until its delay is over, or *parked* for good: permanent failures,
records whose attempts reached ``KAFKA_MAX_ATTEMPTS``, and values that are not
valid envelopes. Parked dead letters stay on the topic for operators.

Note:
    The re-published records and the worker's progress (its offsets on the
    dead-letter topic) are committed in one Kafka transaction, so a restart
    neither resends what was redriven nor skips what was not. Readers with
    ``isolation_level=read_committed`` (the consumer is one) see each
    redriven record once.

    Dead letters of one partition are handled in order: one that is not due
    yet holds back those behind it in its partition (they were dead-lettered
    later, so they are rarely due earlier).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.structs import ConsumerRecord, TopicPartition

from consumer_patch.errors import EnvelopeError
from consumer_patch.republish import (
    DeadLetterPosition,
    parse_envelope,
    republish_record,
)
from consumer_patch.settings import Settings

logger = logging.getLogger(__name__)

POLL_MILLISECONDS = 500
Action = Literal["redrive", "park", "wait"]


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    due_at: float = 0.0


def redrive_delay(retry_count: int, base_seconds: float, max_seconds: float) -> float:
    """Delay before the n-th redrive: base · 2^(n-1), capped (no jitter, so
    an operator can tell when a dead letter will go back)."""
    exponent = min(max(retry_count, 1) - 1, 62)
    return min(max_seconds, base_seconds * 2.0**exponent)


def decide(envelope: dict[str, Any] | None, now: float, settings: Settings) -> Decision:
    """What to do with one dead letter at time ``now`` (seconds since the epoch)."""
    if envelope is None:
        return Decision("park", "invalid_envelope")
    if envelope["error_category"] == "permanent":
        return Decision("park", "permanent")
    if envelope["original_topic"] == settings.kafka_dlq_topic:
        return Decision("park", "loop_to_dead_letter_topic")
    if envelope["retry_count"] >= settings.kafka_max_attempts:
        return Decision("park", "exhausted")

    failed_at = datetime.fromisoformat(envelope["failed_at"].replace("Z", "+00:00"))
    delay = redrive_delay(
        envelope["retry_count"],
        settings.kafka_redrive_delay_ms / 1000,
        settings.kafka_redrive_max_delay_ms / 1000,
    )
    due_at = failed_at.timestamp() + delay
    if now < due_at:
        return Decision("wait", "not_due", due_at)
    return Decision("redrive", envelope["error_category"], due_at)


@dataclass
class RedriveSummary:
    redriven: Counter[str]
    parked: Counter[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "redriven": sum(self.redriven.values()),
            "redriven_by_topic": dict(self.redriven),
            "parked": sum(self.parked.values()),
            "parked_by_reason": dict(self.parked),
        }


class RedriveWorker:
    """Consume the dead-letter topic and redrive what is due."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.summary = RedriveSummary(Counter(), Counter())
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._queues: dict[TopicPartition, deque[ConsumerRecord[bytes, bytes]]] = {}
        self._stopping = asyncio.Event()
        # Held while due dead letters are handled and committed; a rebalance
        # waits for it before giving partitions away (see _Revocation).
        self._handling = asyncio.Lock()

    async def start(self) -> None:
        options = self.settings.kafka_client_options()
        consumer = AIOKafkaConsumer(
            **options,
            group_id=self.settings.kafka_redrive_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        producer = AIOKafkaProducer(
            **options,
            acks="all",
            enable_idempotence=True,
            transactional_id=self.settings.redrive_transactional_id,
            max_request_size=self.settings.kafka_dlq_max_message_bytes,
        )
        consumer.subscribe([self.settings.kafka_dlq_topic], listener=_Revocation(self))
        try:
            await consumer.start()
            await producer.start()
        except BaseException:
            await consumer.stop()
            await producer.stop()
            raise
        self._consumer, self._producer = consumer, producer

    async def stop(self) -> None:
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = None
        try:
            if consumer is not None:
                await consumer.stop()
        finally:
            if producer is not None:
                await producer.stop()

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self, until_caught_up: bool = False) -> RedriveSummary:
        """Redrive until ``request_stop``; with ``until_caught_up``, return once
        every dead letter present at the start was redriven or parked."""
        consumer = self._require(self._consumer)
        targets: dict[TopicPartition, int] | None = None
        while not self._stopping.is_set():
            fetched = await consumer.getmany(timeout_ms=POLL_MILLISECONDS)
            for partition, records in fetched.items():
                self._queues.setdefault(partition, deque()).extend(records)
            async with self._handling:
                await self._handle_due(time.time())
            if until_caught_up:
                targets = targets or await self._end_offsets()
                if await self._caught_up(targets):
                    break
        return self.summary

    async def _handle_due(self, now: float) -> None:
        consumer = self._require(self._consumer)
        outgoing: list[tuple[dict[str, Any], DeadLetterPosition]] = []
        parked: list[str] = []
        offsets: dict[TopicPartition, int] = {}
        for partition, queue in self._queues.items():
            while queue:
                record = queue[0]
                position = DeadLetterPosition(
                    record.topic, record.partition, record.offset
                )
                envelope = _envelope_or_none(record.value, position)
                decision = decide(envelope, now, self.settings)
                if decision.action == "wait":
                    consumer.pause(partition)
                    break
                if decision.action == "redrive" and envelope is not None:
                    outgoing.append((envelope, position))
                else:
                    parked.append(decision.reason)
                    logger.info("parked %s reason=%s", position, decision.reason)
                offsets[partition] = record.offset + 1
                queue.popleft()
            if not queue:
                consumer.resume(partition)
        if offsets:
            await self._commit(outgoing, offsets)
            for envelope, _position in outgoing:
                self.summary.redriven[envelope["original_topic"]] += 1
            self.summary.parked.update(parked)

    async def forget(self, revoked: Collection[TopicPartition]) -> None:
        """Drop what is queued for ``revoked`` partitions, after any commit in
        flight; their next owner reads them again from the committed offset."""
        async with self._handling:
            for partition in revoked:
                dropped = self._queues.pop(partition, None)
                if dropped:
                    logger.info(
                        "partition %s revoked, %d queued dead letter(s) left to "
                        "its next owner",
                        partition,
                        len(dropped),
                    )

    async def _commit(
        self,
        outgoing: Sequence[tuple[dict[str, Any], DeadLetterPosition]],
        offsets: dict[TopicPartition, int],
    ) -> None:
        producer = self._require(self._producer)
        async with producer.transaction():
            for envelope, position in outgoing:
                record = republish_record(envelope, position)
                await producer.send(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                )
                logger.info(
                    "redriving %s to %s retry_count=%s",
                    position,
                    record.topic,
                    envelope["retry_count"],
                )
            await producer.send_offsets_to_transaction(
                offsets, self.settings.kafka_redrive_group_id
            )

    async def _end_offsets(self) -> dict[TopicPartition, int]:
        from consumer_patch.topics import partitions_of

        consumer = self._require(self._consumer)
        topic = self.settings.kafka_dlq_topic
        numbers = await partitions_of(self.settings.kafka_client_options(), topic)
        partitions = [TopicPartition(topic, number) for number in numbers]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends

    async def _caught_up(self, targets: dict[TopicPartition, int]) -> bool:
        # Everything fetched is handled and committed in the same step, so a
        # partition is done when its queue is empty and its position reached
        # the end (positions step over transaction markers, offsets do not).
        consumer = self._require(self._consumer)
        assigned = consumer.assignment()
        for partition, end in targets.items():
            if self._queues.get(partition):
                return False
            if end == 0:
                continue
            if partition not in assigned or await consumer.position(partition) < end:
                return False
        return True

    @staticmethod
    def _require(client: Any) -> Any:
        if client is None:
            raise RuntimeError("RedriveWorker.start() has not been awaited")
        return client


class _Revocation(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps a worker from redriving dead letters of partitions it lost.

    Note:
        aiokafka awaits ``on_partitions_revoked`` before the group rebalances,
        so a commit in flight finishes before another worker can fetch the
        same offsets, and anything still queued is dropped: a partition that
        comes back is read again from its committed offset, and nothing is
        redriven twice.
    """

    def __init__(self, worker: RedriveWorker):
        self._worker = worker

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self._worker.forget(revoked)

    async def on_partitions_assigned(
        self, assigned: Collection[TopicPartition]
    ) -> None:
        return None


def _envelope_or_none(
    value: bytes | None, position: DeadLetterPosition
) -> dict[str, Any] | None:
    try:
        return parse_envelope(value, position)
    except EnvelopeError as error:
        logger.warning("%s", error)
        return None
