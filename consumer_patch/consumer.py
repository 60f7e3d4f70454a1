"""The dead-letter consumer: every record ends stored or dead-lettered, never lost.

Per batch (up to ``KAFKA_BATCH_SIZE`` records or ``KAFKA_BATCH_TIMEOUT_MS``):

1. decode and validate each record; the undecodable and invalid are
   dead-lettered at once (permanent failures);
2. hand the valid ones to the handler in one call; when that call fails the
   batch is split in halves recursively until the failing records stand
   alone (bisection: about 2·k·log2(n) calls for k bad records in n);
3. a record failing alone is retried in place with exponential backoff when
   the failure is transient or unknown, then dead-lettered with its error;
   its attempts are noted in the committed offset's metadata before each
   wait, so a crash or a rebalance does not grant them again;
4. dead letters are written and acknowledged (``acks=all``), then the
   offsets of the whole batch are committed (in transactional mode, in the
   same Kafka transaction as the dead letters).

Note:
    Offsets move only in step 4, after every record of the batch is stored or
    durably dead-lettered. When the dead-letter topic cannot be written the
    consumer holds its position, reports unhealthy and retries with capped
    backoff; it never skips. When the handler's health probe says the
    downstream store is down, the consumer holds its position instead of
    dead-lettering the stream (the outage guard) and resumes by itself.
    While it waits it pauses its partitions and keeps polling, so it stays
    in its group (``max.poll.interval.ms`` is respected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition

from consumer_patch.attempts import AttemptLedger, AttemptNote
from consumer_patch.envelope import ErrorCategory, Failure
from consumer_patch.errors import (
    DeadLetterPublishError,
    EnvelopeError,
    RecordError,
    UnhandledRecordError,
)
from consumer_patch.isolation import isolate
from consumer_patch.metrics import ConsumerMetrics, Health
from consumer_patch.publisher import DeadLetter, DeadLetterPublisher, prior_attempts_of
from consumer_patch.records import ActionRecord, SourceRecord, decode_action
from consumer_patch.retry import Backoff, ErrorClassifier
from consumer_patch.schemas import prepare_validators
from consumer_patch.settings import Settings

logger = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[ActionRecord]], Awaitable[None]]
HealthProbe = Callable[[], Awaitable[bool]]

POLL_SLICE_SECONDS = 0.5
LOGGED_POSITIONS = 5
PUBLISH_COMPONENT = "dead_letter_publish"
DEPENDENCY_COMPONENT = "dependency"
COMMIT_COMPONENT = "offset_commit"


class StopRequestedError(Exception):
    """Stop was asked for while the batch could not be finished; nothing is
    committed, so the batch is redelivered on the next start."""


@dataclass(frozen=True)
class _Outcome:
    error: BaseException
    category: ErrorCategory
    attempts: int  # in this delivery, including those noted by earlier owners


class DeadLetterConsumer:
    """Consume the source topic, store actions, dead-letter what fails.

    Args:
        handler: stores a batch or raises; called again with halves of the
            batch to isolate failing records.
        probe: optional health check of what the handler writes to; when it
            returns False the consumer holds position instead of
            dead-lettering (see the module note).
        classifier: decides transient versus permanent; extend it with
            ``register`` for your own exception types.
    """

    def __init__(
        self,
        settings: Settings,
        handler: BatchHandler,
        *,
        probe: HealthProbe | None = None,
        classifier: ErrorClassifier | None = None,
        metrics: ConsumerMetrics | None = None,
        publisher: DeadLetterPublisher | None = None,
    ):
        self.settings = settings
        self.metrics = metrics or ConsumerMetrics()
        self.health = Health(self.metrics)
        self._handler = handler
        self._probe = probe
        self._classifier = classifier or ErrorClassifier()
        self._publisher = publisher or DeadLetterPublisher(settings)
        self._backoff = Backoff(
            settings.kafka_retry_delay_ms / 1000,
            settings.kafka_retry_max_delay_ms / 1000,
        )
        self._attempt_notes = AttemptLedger(
            settings.kafka_group_id, settings.kafka_client_options()
        )
        # First offset of the current batch per partition: already safe to
        # commit, so attempt notes can be committed there.
        self._batch_starts: dict[TopicPartition, int] = {}
        # Rebalances that took partitions away, and how many had happened when
        # the current batch was fetched. A batch fetched before a rebalance
        # is never dead-lettered or committed: its partitions may belong to
        # another member now, which reads them again from the committed
        # offsets. The lock makes a rebalance wait for a write in flight.
        self._revocations = 0
        self._batch_revocations = 0
        self._writing = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        settings = self.settings
        consumer = AIOKafkaConsumer(
            **settings.kafka_client_options(),
            group_id=settings.kafka_group_id,
            enable_auto_commit=False,
            auto_offset_reset=settings.kafka_auto_offset_reset,
            isolation_level="read_committed",
            max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 3),
            max_poll_records=settings.kafka_batch_size,
        )
        consumer.subscribe([settings.kafka_topic], listener=_Reassignment(self))
        prepare_validators()
        try:
            await consumer.start()
            if settings.kafka_dlq_enabled:
                await self._publisher.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        logger.info(
            "consumer started topic=%s group=%s dlq=%s transactional=%s",
            settings.kafka_topic,
            settings.kafka_group_id,
            settings.kafka_dlq_topic if settings.kafka_dlq_enabled else "disabled",
            settings.kafka_dlq_transactional,
        )

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        try:
            if consumer is not None:
                await consumer.stop()
        finally:
            try:
                await self._publisher.stop()
            finally:
                await self._attempt_notes.close()

    def request_stop(self) -> None:
        """Finish the current batch, commit it, then return from ``run``."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Consume until ``request_stop``.

        Raises:
            UnhandledRecordError: a record failed and dead-lettering is off.
        """
        while not self.stopping:
            batch = await self._next_batch()
            if not batch:
                continue
            try:
                await self.process_batch(batch)
            except StopRequestedError:
                logger.info(
                    "stopping before the batch was finished; it will be redelivered"
                )
                return

    # -- one batch -------------------------------------------------------

    async def process_batch(self, batch: Sequence[SourceRecord]) -> None:
        started = time.monotonic()
        self._batch_starts = _first_offsets(batch)
        valid: list[ActionRecord] = []
        dead: list[DeadLetter] = []
        for record in batch:
            try:
                valid.append(decode_action(record))
            except RecordError as error:
                failure = Failure(error, "permanent", attempts=1)
                dead.append(DeadLetter(record, failure, prior_attempts_of(record)))

        if valid:
            dead.extend(await self._store(valid))
        offsets = _next_offsets(batch)
        if dead and not self.settings.kafka_dlq_enabled:
            await self._stop_at_first_failure(batch, dead)

        if not await self._dead_letter_and_commit(dead, offsets):
            return  # left to a rebalance: redelivered, counted then
        self.metrics.records_processed.labels(self.settings.kafka_topic).inc(
            len(batch) - len(dead)
        )
        self.metrics.batch_duration.observe(time.monotonic() - started)

    async def _store(self, records: Sequence[ActionRecord]) -> list[DeadLetter]:
        while True:
            dead = await self._isolate(records)
            if not self._looks_like_outage(records, dead):
                return dead
            # Without a probe, every record of a multi-record batch failing
            # transiently is the sign of an outage: hold, then start over.
            await self._hold_during_outage(probe=None)

    def _looks_like_outage(
        self, records: Sequence[ActionRecord], dead: Sequence[DeadLetter]
    ) -> bool:
        return (
            self._probe is None
            and len(records) > 1
            and len(dead) == len(records)
            and all(item.failure.category == "transient" for item in dead)
        )

    async def _isolate(self, records: Sequence[ActionRecord]) -> list[DeadLetter]:
        """Store ``records``; return the ones that fail on their own."""
        failed = await isolate(records, self._attempt)
        return [
            DeadLetter(
                item.record,
                Failure(outcome.error, outcome.category, outcome.attempts),
                prior_attempts_of(item.record),
            )
            for item, outcome in failed
        ]

    async def _attempt(self, records: Sequence[ActionRecord]) -> _Outcome | None:
        """Call the handler; retry a lone record in place while that may help."""
        alone = len(records) == 1
        record = records[0].record
        carried: int | None = None
        attempts = 0
        while True:
            attempts += 1
            self.metrics.handler_calls.inc()
            try:
                await self._handler(records)
                return None
            except Exception as error:
                category = self._classifier.classify(error)
                failed = error
            if alone and carried is None:
                # Only a record that fails alone asks: a crashed or
                # rebalanced predecessor may have tried it already.
                carried = await self._attempt_notes.carried(
                    record.topic, record.partition, record.offset
                )
            last = _Outcome(failed, category, (carried or 0) + attempts)
            if category == "permanent":
                return last
            if await self._dependency_is_down():
                # The failure is the store's, not the records': wait for it
                # and do not count the attempt against the records.
                await self._hold_during_outage(probe=self._probe)
                attempts -= 1
                continue
            budget = self._retry_budget(record, carried or 0) if alone else 0
            if attempts > budget:
                return last
            if self.stopping:
                raise StopRequestedError(
                    "stop requested while a record awaited a retry"
                )
            self.metrics.retries.labels(category).inc()
            delay = self._backoff.delay(attempts)
            logger.info(
                "retrying %s-%s@%s attempt=%d category=%s in %.3fs",
                record.topic,
                record.partition,
                record.offset,
                last.attempts + 1,
                category,
                delay,
            )
            await self._note_attempts(record, last.attempts)
            await self._pause_for(delay)

    def _retry_budget(self, record: SourceRecord, carried: int) -> int:
        # In-place retries left in this delivery (``carried`` attempts were
        # made by an earlier owner), bounded by what is left of the lifetime
        # budget (KAFKA_MAX_ATTEMPTS) counted across redrives and replays.
        in_place = self.settings.kafka_max_retries - carried
        left = (
            self.settings.kafka_max_attempts - prior_attempts_of(record) - carried - 1
        )
        return max(0, min(in_place, left))

    async def _note_attempts(self, record: SourceRecord, attempts: int) -> None:
        partition = TopicPartition(record.topic, record.partition)
        position = self._batch_starts.get(partition)
        if position is None:
            return
        # A note is a commit too: the same rule as for the batch's commit.
        async with self._writing:
            if self._revoked_since_fetch():
                return
            await self._attempt_notes.remember(
                self._require_consumer(),
                record.topic,
                record.partition,
                position,
                AttemptNote(record.offset, attempts),
            )

    async def _dependency_is_down(self) -> bool:
        return self._probe is not None and not await self._probe()

    async def _hold_during_outage(self, probe: HealthProbe | None) -> None:
        self.health.report(DEPENDENCY_COMPONENT, "downstream store unavailable")
        self.metrics.outage.set(1)
        attempt = 0
        while True:
            attempt += 1
            if self.stopping:
                raise StopRequestedError("stop requested during a downstream outage")
            await self._pause_for(self._backoff.delay(attempt))
            if probe is None or await probe():
                break
        self.metrics.outage.set(0)
        self.health.clear(DEPENDENCY_COMPONENT)

    async def _stop_at_first_failure(
        self, batch: Sequence[SourceRecord], dead: Sequence[DeadLetter]
    ) -> None:
        first = min(dead, key=lambda item: (item.record.partition, item.record.offset))
        failed: dict[TopicPartition, int] = {}
        for item in dead:
            partition = TopicPartition(item.record.topic, item.record.partition)
            failed[partition] = min(
                failed.get(partition, item.record.offset), item.record.offset
            )
        safe = {
            partition: offset
            for partition, offset in _next_offsets(batch).items()
            if partition not in failed
        }
        safe.update(failed)  # commit up to, not including, each first failure
        await self._commit(safe)
        record = first.record
        raise UnhandledRecordError(
            record.topic, record.partition, record.offset, first.failure.error
        )

    async def _dead_letter_and_commit(
        self, dead: Sequence[DeadLetter], offsets: dict[TopicPartition, int]
    ) -> bool:
        """Write ``dead`` and commit ``offsets``; False when the batch was
        left to a rebalance (nothing of it written or committed since)."""
        committed = False
        attempt = 0
        while dead:
            try:
                async with self._writing:
                    if self._revoked_since_fetch():
                        self._leave_batch(offsets)
                        return False
                    outgoing = [self._publisher.prepare(item) for item in dead]
                    await self._publisher.publish(outgoing, offsets)
                committed = self._publisher.transactional
                break
            except (DeadLetterPublishError, EnvelopeError) as error:
                attempt += 1
                cause = error.__cause__ or error
                self.metrics.dead_letter_publish_failures.labels(
                    type(cause).__name__
                ).inc()
                self.health.report(PUBLISH_COMPONENT, str(error))
                logger.error(
                    "dead-letter write failed, holding position attempt=%d: %s",
                    attempt,
                    error,
                )
                if self.stopping:
                    raise StopRequestedError from error
                await self._pause_for(self._backoff.delay(attempt))
                with contextlib.suppress(Exception):
                    await self._publisher.restart()
        self.health.clear(PUBLISH_COMPONENT)

        if dead:
            self._count_dead_letters(dead)
        if not committed:
            return await self._commit(offsets)
        self.metrics.last_commit.set_to_current_time()
        self._attempt_notes.cleared(offsets)
        return True

    def _count_dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        kinds = Counter(
            (item.record.topic, item.failure.error_type, item.failure.category)
            for item in dead
        )
        for (topic, error_type, category), count in kinds.items():
            self.metrics.dead_letters.labels(topic, error_type, category).inc(count)
        # One line per batch: a stream of poison must not become a stream of
        # log lines. `agent-dlq list` finds every position.
        shown = ", ".join(
            f"{item.record.topic}-{item.record.partition}@{item.record.offset}"
            f" {item.failure.error_type}"
            for item in dead[:LOGGED_POSITIONS]
        )
        more = len(dead) - LOGGED_POSITIONS
        logger.warning(
            "dead-lettered %d record(s): %s%s",
            len(dead),
            shown,
            f" and {more} more" if more > 0 else "",
        )

    async def _commit(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit ``offsets``; False when the batch was left to a rebalance."""
        consumer = self._require_consumer()
        attempt = 0
        while True:
            try:
                async with self._writing:
                    if self._revoked_since_fetch():
                        # The broker checks the member's generation, not who
                        # owns a partition: a commit for a partition that
                        # moved would be accepted and could move its new
                        # owner's position.
                        self._leave_batch(offsets)
                        return False
                    await consumer.commit(offsets)
                self._attempt_notes.cleared(offsets)
                self.metrics.last_commit.set_to_current_time()
                self.health.clear(COMMIT_COMPONENT)
                return True
            except (CommitFailedError, IllegalStateError) as error:
                # The partitions went to another member in a rebalance; it
                # will redeliver these records, and storing is idempotent.
                logger.warning("offset commit rejected after a rebalance: %s", error)
                return False
            except KafkaError as error:
                attempt += 1
                self.health.report(COMMIT_COMPONENT, f"{type(error).__name__}: {error}")
                if self.stopping:
                    raise StopRequestedError from error
                await self._pause_for(self._backoff.delay(attempt))

    # -- rebalances ------------------------------------------------------

    async def _partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        if not revoked:
            return  # the first join revokes nothing
        async with self._writing:
            self._revocations += 1

    def _revoked_since_fetch(self) -> bool:
        return self._revocations != self._batch_revocations

    def _leave_batch(self, offsets: dict[TopicPartition, int]) -> None:
        logger.info(
            "partitions were revoked during the batch; leaving %s to their "
            "owner, who reads them again from the committed offsets",
            ", ".join(
                f"{tp.topic}-{tp.partition}<{end}" for tp, end in offsets.items()
            ),
        )
        self.metrics.batches_left_to_rebalance.inc()

    # -- polling ---------------------------------------------------------

    async def _next_batch(self) -> list[SourceRecord]:
        consumer = self._require_consumer()
        self._batch_revocations = self._revocations
        size = self.settings.kafka_batch_size
        deadline = time.monotonic() + self.settings.kafka_batch_timeout_ms / 1000
        batch: list[SourceRecord] = []
        while len(batch) < size and not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            timeout_ms = max(1, int(min(remaining, POLL_SLICE_SECONDS) * 1000))
            fetched = await consumer.getmany(
                timeout_ms=timeout_ms, max_records=size - len(batch)
            )
            for records in fetched.values():
                batch.extend(records)
        return batch

    async def _pause_for(self, seconds: float) -> None:
        """Wait while staying in the group: partitions paused, polling on."""
        consumer = self._require_consumer()
        deadline = time.monotonic() + seconds
        paused = consumer.assignment()
        consumer.pause(*paused)
        try:
            while not self.stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                timeout_ms = max(1, int(min(remaining, POLL_SLICE_SECONDS) * 1000))
                fetched = await consumer.getmany(timeout_ms=timeout_ms)
                # Partitions assigned by a rebalance during the wait are not
                # paused; rewind them so their records are delivered later.
                for partition, records in fetched.items():
                    if records:
                        consumer.seek(partition, records[0].offset)
                        consumer.pause(partition)
        finally:
            consumer.resume(*consumer.assignment())

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("DeadLetterConsumer.start() has not been awaited")
        return self._consumer


class _Reassignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the consumer about rebalances.

    Note:
        aiokafka awaits ``on_partitions_revoked`` before the group rebalances,
        so a dead-letter write in flight finishes first, and a batch fetched
        before the rebalance is never written or committed afterwards.
        Partitions that come (back) may carry attempt notes written by
        another member meanwhile: they are read afresh, in one request.
    """

    def __init__(self, owner: DeadLetterConsumer):
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self._owner._partitions_revoked(revoked)

    async def on_partitions_assigned(
        self, assigned: Collection[TopicPartition]
    ) -> None:
        await self._owner._attempt_notes.load(assigned)


def _first_offsets(batch: Sequence[SourceRecord]) -> dict[TopicPartition, int]:
    lowest: dict[tuple[str, int], int] = {}
    for record in batch:
        key = (record.topic, record.partition)
        lowest[key] = min(record.offset, lowest.get(key, record.offset))
    return {TopicPartition(*key): offset for key, offset in lowest.items()}


def _next_offsets(batch: Sequence[SourceRecord]) -> dict[TopicPartition, int]:
    highest: dict[tuple[str, int], int] = {}
    for record in batch:
        key = (record.topic, record.partition)
        if record.offset >= highest.get(key, -1):
            highest[key] = record.offset
    return {TopicPartition(*key): offset + 1 for key, offset in highest.items()}
