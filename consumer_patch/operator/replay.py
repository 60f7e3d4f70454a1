"""Replay dead letters: send each original record again, once, at a chosen rate.

Idempotence and resumption come from a ledger: a topic
(``KAFKA_REPLAY_LEDGER_TOPIC``, default ``<dlq topic>-replay-ledger``) with
one record per replayed dead letter, keyed ``<dead_letter_id>><target>``.
Each replayed record and its ledger record are written in the same Kafka
transaction, so the ledger says "replayed" exactly when the replayed record
is committed. A run reads the ledger first and skips what it names: a second
identical run sends nothing, and a run that was interrupted (Ctrl-C, crash,
SIGKILL) sends only what the first did not commit.

Note:
    Every run uses the same transactional id per ledger
    (``agent-dlq-replay.<ledger topic>``). Starting the producer fences any
    earlier run that is still alive and aborts its open transaction, and the
    ledger is read only after that, so two runs never both send a record.
    Consumers of the target see each replayed record once when they read
    with ``isolation_level=read_committed`` (the agent-actions consumer
    does); a read_uncommitted reader may also see records of an aborted
    transaction.

    Keying the ledger by ``dead_letter_id`` rather than by position also
    replays only once a dead letter that the consumer wrote twice (a crash
    between write and commit in non-transactional mode gives both copies the
    same id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from consumer_patch.operator.errors import OperatorError, ReplayRefusedError
from consumer_patch.operator.pacing import Progress, RateLimiter
from consumer_patch.operator.reader import (
    DeadLetterReader,
    DeadLetterRecord,
    TopicReader,
    client_options,
    kafka_errors,
    validated,
)
from consumer_patch.operator.selection import Selection
from consumer_patch.republish import RepublishRecord, republish_record
from consumer_patch.settings import Settings
from consumer_patch.topics import (
    REPLAY_LEDGER_PARTITIONS,
    TopicSpec,
    describe_topic_configs,
    ensure_topics,
    replay_ledger_topic_configs,
)

logger = logging.getLogger(__name__)

# A transaction is committed after this many records or this long, and
# always before the rate limit makes the run wait: an interruption loses at
# most one small transaction, which the next run sends again.
MAX_RECORDS_PER_TRANSACTION = 1000
MAX_TRANSACTION_SECONDS = 1.0
DEFAULT_RATE_PER_SECOND = 100.0


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """What the report shows of one dead letter sent (or that would be)."""

    position: str
    target: str
    error_type: str
    correlation_id: str | None
    original: str
    retry_count: int

    @classmethod
    def of(
        cls, letter: DeadLetterRecord, envelope: dict[str, Any], target: str
    ) -> ReplayRow:
        return cls(
            position=str(letter.position),
            target=target,
            error_type=str(envelope["error_type"]),
            correlation_id=envelope["correlation_id"],
            original=(
                f"{envelope['original_topic']}-{envelope['original_partition']}@"
                f"{envelope['original_offset']}"
            ),
            retry_count=int(envelope["retry_count"]),
        )

    def as_row(self, state: str) -> dict[str, Any]:
        return {
            "position": self.position,
            "target": self.target,
            "error_type": self.error_type,
            "correlation_id": self.correlation_id,
            "original": self.original,
            "retry_count": self.retry_count,
            "state": state,
        }


@dataclass(frozen=True)
class ReplayItem:
    """A selected dead letter, validated, with the record to send."""

    letter: DeadLetterRecord
    target: str
    ledger_key: str
    record: RepublishRecord
    row: ReplayRow


@dataclass
class ReplayReport:
    """What a replay selected, skipped and sent."""

    dry_run: bool
    selected: int = 0
    unreadable: int = 0
    duplicates: int = 0
    already_replayed: int = 0
    sent: int = 0
    rows: list[ReplayRow] = field(default_factory=list)
    targets: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "selected": self.selected,
            "unreadable_skipped": self.unreadable,
            "duplicates_skipped": self.duplicates,
            "already_replayed": self.already_replayed,
            "sent": self.sent,
            "targets": dict(sorted(self.targets.items())),
            "interrupted": self.interrupted,
            "would_send" if self.dry_run else "records": [
                row.as_row("would send" if self.dry_run else "sent")
                for row in self.rows
            ],
        }


def ledger_key(dead_letter_id: str, target: str) -> str:
    return f"{dead_letter_id}>{target}"


def destination_of(envelope: dict[str, Any], target: str | None) -> tuple[str, str]:
    """Where a dead letter goes and its ledger key."""
    destination = target or str(envelope["original_topic"])
    return destination, ledger_key(str(envelope["dead_letter_id"]), destination)


def check_targets(settings: Settings, targets: set[str], existing: set[str]) -> None:
    """Refuse the dead-letter topic, the ledger, unlisted and missing topics.

    Raises:
        ReplayRefusedError: naming every refused target and why.
    """
    problems = []
    for target in sorted(targets):
        if target == settings.kafka_dlq_topic:
            problems.append(f"{target} is the dead-letter topic itself")
        elif target == settings.replay_ledger_topic:
            problems.append(f"{target} is the replay ledger")
        elif target not in settings.replay_allowed_topics:
            allowed = ", ".join(sorted(settings.replay_allowed_topics))
            problems.append(
                f"{target} is not in KAFKA_REPLAY_ALLOWED_TOPICS (allowed: {allowed})"
            )
        elif target not in existing:
            problems.append(f"{target} does not exist")
    if problems:
        raise ReplayRefusedError(
            "replay refused, nothing was sent: " + "; ".join(problems)
        )


async def replay(
    settings: Settings,
    selection: Selection,
    *,
    target: str | None = None,
    dry_run: bool = False,
    rate: float | None = DEFAULT_RATE_PER_SECOND,
    progress: bool | None = None,
    stop: asyncio.Event | None = None,
) -> ReplayReport:
    """Replay the dead letters ``selection`` picks, each at most once per target.

    The selection is read twice and never held in memory: a first pass
    counts it and collects its targets and ledger keys (every target is
    checked before anything is sent), a second pass over the same offsets
    validates and sends.

    Args:
        target: send every record here instead of its original topic.
        rate: records per second; None or 0 for no limit.
        progress: draw a progress bar on stderr (default: when it is a TTY).
        stop: when set, the run finishes its open transaction and returns
            with ``interrupted`` set; running it again resumes.

    Raises:
        ReplayRefusedError: a target is not allowed or does not exist; this
            is checked for the whole selection before anything is sent.
    """
    if target is not None:
        check_targets(settings, {target}, {target})
    report = ReplayReport(dry_run)
    async with DeadLetterReader(settings) as reader:
        starts, ends = await reader.plan(selection)
        keys, targets = await _first_pass(
            reader.matching(selection, starts, ends, "reading" if progress else None),
            target,
            report,
        )
        check_targets(settings, targets, await _existing_topics(settings))

        def second_pass() -> AsyncIterator[DeadLetterRecord]:
            return reader.matching(selection, starts, ends)

        if dry_run:
            _skip_replayed(keys, await _ledger_keys(settings), report)
            async for item in _pending(second_pass(), target, keys, report, None):
                report.rows.append(item.row)
                report.targets[item.target] += 1
            return report

        await ensure_ledger(settings)
        producer = await _start_producer(settings)
        try:
            # Read only after the producer has fenced any earlier run: what
            # that run committed is in the ledger now, and it can commit
            # nothing more.
            _skip_replayed(keys, await _ledger_keys(settings), report)
            bar = Progress("replaying", len(keys), enabled=progress)
            sender = _TransactionalSender(
                settings, producer, RateLimiter(rate), report, bar
            )
            try:
                pending = _pending(second_pass(), target, keys, report, bar)
                async with contextlib.aclosing(pending):
                    async for item in pending:
                        if not await sender.send(item, stop):
                            # Not sent, not in the ledger: the next run sends it.
                            report.interrupted = True
                            break
                await sender.close()
            except BaseException:
                await sender.abort()
                raise
            finally:
                bar.close()
        finally:
            await producer.stop()
    return report


async def _first_pass(
    letters: AsyncIterator[DeadLetterRecord], target: str | None, report: ReplayReport
) -> tuple[set[str], set[str]]:
    """Count the selection; its ledger keys (duplicates once) and targets."""
    keys: set[str] = set()
    targets: set[str] = set()
    async for letter in letters:
        report.selected += 1
        if letter.envelope is None:
            report.unreadable += 1
            logger.warning(
                "skipping unreadable dead letter %s: %s", letter.pointer, letter.problem
            )
            continue
        destination, key = destination_of(letter.envelope, target)
        if key in keys:
            report.duplicates += 1
            continue
        keys.add(key)
        targets.add(destination)
    return keys, targets


def _skip_replayed(keys: set[str], done: set[str], report: ReplayReport) -> None:
    replayed = keys & done
    report.already_replayed = len(replayed)
    keys -= replayed


async def _pending(
    letters: AsyncIterator[DeadLetterRecord],
    target: str | None,
    keys: set[str],
    report: ReplayReport,
    bar: Progress | None,
) -> AsyncGenerator[ReplayItem, None]:
    """The dead letters whose key is in ``keys``, each key once, validated
    against the envelope schema, with the record to send.

    ``keys`` shrinks as they are yielded; what is left at the end was not
    reached (an interrupted run).
    """
    async for letter in letters:
        if letter.envelope is None:
            continue
        destination, key = destination_of(letter.envelope, target)
        if key not in keys:
            continue  # a duplicate, or replayed by an earlier run
        keys.discard(key)
        # Schema validation costs; only what is still to send pays for it.
        checked = validated(letter)
        envelope = checked.envelope
        if envelope is None:
            report.unreadable += 1
            logger.warning(
                "skipping invalid dead letter %s: %s", checked.pointer, checked.problem
            )
            if bar is not None:
                bar.advance()
            continue
        yield ReplayItem(
            checked,
            destination,
            key,
            republish_record(envelope, checked.pointer, destination),
            ReplayRow.of(checked, envelope, destination),
        )


class _TransactionalSender:
    """Sends replay items in transactions, each with its ledger entry.

    A transaction is committed after ``MAX_RECORDS_PER_TRANSACTION`` records
    or ``MAX_TRANSACTION_SECONDS``, and before the rate limit makes the run
    wait.
    """

    def __init__(
        self,
        settings: Settings,
        producer: AIOKafkaProducer,
        limiter: RateLimiter,
        report: ReplayReport,
        bar: Progress,
    ):
        self._settings = settings
        self._producer = producer
        self._limiter = limiter
        self._report = report
        self._bar = bar
        self._batch: list[ReplayItem] = []
        self._open = False
        self._started = 0.0

    async def send(self, item: ReplayItem, stop: asyncio.Event | None) -> bool:
        """Send ``item`` in the open transaction; False when ``stop`` was set
        first (the item is not sent)."""
        while True:
            if stop is not None and stop.is_set():
                return False
            wait = self._limiter.delay()
            if wait <= 0:
                break
            await self.close()
            await _sleep_unless(stop, wait)
        async with kafka_errors("replaying"):
            if not self._open:
                await self._producer.begin_transaction()
                self._open = True
                self._started = time.monotonic()
            await _send_one(self._settings, self._producer, item)
        self._batch.append(item)
        if (
            len(self._batch) >= MAX_RECORDS_PER_TRANSACTION
            or time.monotonic() - self._started > MAX_TRANSACTION_SECONDS
        ):
            await self.close()
        return True

    async def close(self) -> None:
        """Commit the open transaction, if any, and count what it held."""
        if not self._open:
            return
        async with kafka_errors("replaying"):
            await self._producer.commit_transaction()
        self._open = False
        batch, self._batch = self._batch, []
        report = self._report
        report.sent += len(batch)
        report.rows.extend(item.row for item in batch)
        report.targets.update(item.target for item in batch)
        self._bar.advance(len(batch))
        logger.debug("replay committed records=%d total=%d", len(batch), report.sent)

    async def abort(self) -> None:
        if self._open:
            self._open = False
            self._batch = []
            await _abort(self._producer)


async def ensure_ledger(settings: Settings) -> None:
    """Create the ledger topic when it is missing, as durable as the DLQ."""
    options = client_options(settings)
    replication = await _replication_factor(options, settings.kafka_dlq_topic)
    dlq_configs = await describe_topic_configs(options, settings.kafka_dlq_topic)
    spec = TopicSpec(
        settings.replay_ledger_topic,
        REPLAY_LEDGER_PARTITIONS,
        replication,
        replay_ledger_topic_configs(int(dlq_configs.get("min.insync.replicas", "1"))),
    )
    async with kafka_errors(f"creating {settings.replay_ledger_topic}"):
        created = await ensure_topics(options, [spec])
    if created:
        logger.info("created replay ledger topic=%s", settings.replay_ledger_topic)


async def _send_one(
    settings: Settings, producer: AIOKafkaProducer, item: ReplayItem
) -> None:
    record = item.record
    # The replayed record gets a new timestamp (the broker's default): the
    # original one may be older than the target's retention, and the
    # envelope keeps it anyway.
    await producer.send(
        record.topic, value=record.value, key=record.key, headers=record.headers
    )
    entry = {
        "dead_letter_id": (item.letter.envelope or {}).get("dead_letter_id"),
        "dead_letter": str(item.letter.pointer),
        "target": record.topic,
        "replayed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    await producer.send(
        settings.replay_ledger_topic,
        key=item.ledger_key.encode(),
        value=json.dumps(entry, separators=(",", ":")).encode(),
    )


async def _sleep_unless(stop: asyncio.Event | None, seconds: float) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _abort(producer: AIOKafkaProducer) -> None:
    # Best effort: if the abort fails too, the next run's producer start
    # aborts the transaction (same transactional id), and so does the broker
    # after the transaction timeout.
    try:
        await asyncio.shield(producer.abort_transaction())
    except Exception as error:
        logger.warning("aborting the replay transaction failed: %r", error)


async def _start_producer(settings: Settings) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        **client_options(settings),
        transactional_id=settings.replay_transactional_id,
        enable_idempotence=True,
        acks="all",
        max_request_size=settings.kafka_dlq_max_message_bytes,
        linger_ms=5,
    )
    try:
        async with kafka_errors("starting the replay producer"):
            await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


async def _ledger_keys(settings: Settings) -> set[str]:
    """Keys of the ledger's committed entries (empty when it does not exist)."""
    ledger = settings.replay_ledger_topic
    if ledger not in await _existing_topics(settings):
        return set()
    keys: set[str] = set()
    async with TopicReader(settings, ledger) as reader:
        partitions = await reader.partitions()
        bounds = await reader.bounds(partitions)
        starts = {number: first for number, (first, _last) in bounds.items()}
        ends = {number: last for number, (_first, last) in bounds.items()}
        async for record in reader.read(starts, ends):
            if record.key is None:
                continue
            key = record.key.decode("utf-8", errors="replace")
            if record.value is None:
                keys.discard(key)
            else:
                keys.add(key)
    return keys


async def _existing_topics(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    async with kafka_errors(
        f"connecting to Kafka at {settings.kafka_bootstrap_servers}"
    ):
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()


async def _replication_factor(options: dict[str, Any], topic: str) -> int:
    admin = AIOKafkaAdminClient(**options)
    async with kafka_errors(f"describing {topic}"):
        await admin.start()
        try:
            described = await admin.describe_topics([topic])
        finally:
            await admin.close()
    for entry in described:
        partitions = entry.get("partitions") or []
        if entry.get("topic") == topic and partitions:
            return len(partitions[0].get("replicas", [])) or 1
    raise OperatorError(f"topic {topic} does not exist")
