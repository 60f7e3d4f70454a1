"""Write dead letters to the dead-letter topic and wait for the broker's word.

Note:
    The producer is idempotent with ``acks=all``: a dead letter counts as
    written only once every in-sync replica has it. In transactional mode the
    dead letters and the source offsets are committed in one Kafka
    transaction, so after a crash either both are visible or neither is, and
    readers with ``isolation_level=read_committed`` never see a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from consumer_patch import headers
from consumer_patch.envelope import Failure, build_dead_letter
from consumer_patch.errors import DeadLetterPublishError, EnvelopeError
from consumer_patch.records import SourceRecord
from consumer_patch.settings import Settings

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 15_000
# Room for the record batch framing and our headers around the envelope.
FRAMING_ALLOWANCE_BYTES = 64 * 1024


@dataclass(frozen=True)
class DeadLetter:
    """One record to dead-letter and why."""

    record: SourceRecord
    failure: Failure
    prior_attempts: int


@dataclass(frozen=True)
class OutgoingRecord:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    envelope: dict[str, Any]


def prior_attempts_of(record: SourceRecord) -> int:
    """Attempts already made on the record, from its retry-count header."""
    for name, raw in reversed(list(record.headers)):
        if name == headers.RETRY_COUNT and raw is not None:
            try:
                count = int(raw.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                logger.warning(
                    "ignoring unreadable retry-count header on %s-%s@%s",
                    record.topic,
                    record.partition,
                    record.offset,
                )
                return 0
            return max(count, 0)
    return 0


class DeadLetterPublisher:
    """Builds envelopes and writes them to the dead-letter topic."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    @property
    def transactional(self) -> bool:
        return self._settings.kafka_dlq_transactional

    @property
    def max_envelope_bytes(self) -> int:
        return self._settings.kafka_dlq_max_message_bytes - FRAMING_ALLOWANCE_BYTES

    async def start(self) -> None:
        options: dict[str, Any] = {
            **self._settings.kafka_client_options(),
            "acks": "all",
            "enable_idempotence": True,
            "max_request_size": self._settings.kafka_dlq_max_message_bytes,
            "request_timeout_ms": REQUEST_TIMEOUT_MS,
            # Every dead letter of a batch is queued before the first await,
            # so lingering would only delay the acknowledgement.
            "linger_ms": 0,
        }
        if self.transactional:
            options["transactional_id"] = self._settings.transactional_id
        producer = AIOKafkaProducer(**options)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def restart(self) -> None:
        """Replace the producer: a failed one may be in a state it cannot leave."""
        try:
            await self.stop()
        except Exception as error:
            logger.warning("stopping the dead-letter producer failed: %r", error)
        await self.start()

    def prepare(self, dead_letter: DeadLetter) -> OutgoingRecord:
        """Build the outgoing record: original key, original and our headers."""
        record = dead_letter.record
        envelope, serialized = build_dead_letter(
            record,
            dead_letter.failure,
            consumer_group=self._settings.kafka_group_id,
            prior_attempts=dead_letter.prior_attempts,
            max_bytes=self.max_envelope_bytes,
        )
        kept = [
            (name, raw if raw is not None else b"")
            for name, raw in record.headers
            if not headers.is_ours(name)
        ]
        ours = [
            (headers.ERROR_TYPE, envelope["error_type"]),
            (headers.ERROR_CATEGORY, envelope["error_category"]),
            (headers.ORIGINAL_TOPIC, record.topic),
            (headers.ORIGINAL_PARTITION, str(record.partition)),
            (headers.ORIGINAL_OFFSET, str(record.offset)),
            (headers.RETRY_COUNT, str(envelope["retry_count"])),
            (headers.DEAD_LETTER_ID, envelope["dead_letter_id"]),
        ]
        encoded = [(name, value.encode("utf-8")) for name, value in ours]
        return OutgoingRecord(record.key, serialized, kept + encoded, envelope)

    async def publish(
        self,
        outgoing: Sequence[OutgoingRecord],
        offsets: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        """Write ``outgoing`` and wait until the broker acknowledged every one.

        In transactional mode ``offsets`` (the source offsets to commit) are
        committed in the same transaction as the dead letters.

        Raises:
            DeadLetterPublishError: anything was not acknowledged; nothing
                may be committed past these records.
        """
        producer = self._producer
        if producer is None:
            raise DeadLetterPublishError("the dead-letter producer is not started")
        try:
            if self.transactional:
                await self._publish_in_transaction(producer, outgoing, offsets or {})
            else:
                await self._send_all(producer, outgoing)
        except EnvelopeError:
            raise
        except Exception as error:
            raise DeadLetterPublishError(
                f"writing {len(outgoing)} dead letter(s) to "
                f"{self._settings.kafka_dlq_topic} failed: "
                f"{type(error).__name__}: {error}"
            ) from error

    async def _send_all(
        self, producer: AIOKafkaProducer, outgoing: Sequence[OutgoingRecord]
    ) -> None:
        deliveries = [
            await producer.send(
                self._settings.kafka_dlq_topic,
                value=item.value,
                key=item.key,
                headers=item.headers,
            )
            for item in outgoing
        ]
        await asyncio.gather(*deliveries)

    async def _publish_in_transaction(
        self,
        producer: AIOKafkaProducer,
        outgoing: Sequence[OutgoingRecord],
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        await producer.begin_transaction()
        try:
            await self._send_all(producer, outgoing)
            if offsets:
                await producer.send_offsets_to_transaction(
                    dict(offsets), self._settings.kafka_group_id
                )
            await producer.commit_transaction()
        except BaseException:
            # A transaction that failed to commit must be aborted before the
            # producer can start another; if even that fails, `restart` will
            # replace the producer (and the broker aborts the old one).
            try:
                await producer.abort_transaction()
            except Exception as error:
                logger.warning("aborting the dead-letter transaction failed: %r", error)
            raise
