"""In-place attempts on a stuck record, kept in Kafka's committed offset metadata.

A record retried in place has no header to carry its count until it is
dead-lettered. So before each backoff wait the consumer commits, for the
record's partition, the offset it already stands on (the batch's first
offset there: nothing moves forward) with metadata naming the record and the
attempts made on it so far. Whoever processes the partition next, after a
crash, a restart or a rebalance, reads that back and continues the count
instead of starting again.

Note:
    The next regular commit for the partition carries no metadata, which
    clears the note. A note is only ever applied to the record at the offset
    it names, so a stale one cannot count against another record. An attempt
    cut off by a crash before its note was written is not counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, TypeGuard

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

logger = logging.getLogger(__name__)

# Stays far below the broker's offset.metadata.max.bytes (4096 by default).
METADATA_KIND = "agent-dlq.in-place-attempts"
METADATA_VERSION = 1


@dataclass(frozen=True)
class AttemptNote:
    """Attempts already made, in place, on the record at ``offset``."""

    offset: int
    attempts: int

    def encode(self) -> str:
        return json.dumps(
            {
                "kind": METADATA_KIND,
                "v": METADATA_VERSION,
                "offset": self.offset,
                "attempts": self.attempts,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, metadata: str | None) -> AttemptNote | None:
        """The note in ``metadata``, or None for anything else (other tools
        may write their own metadata; it is left alone)."""
        if not metadata:
            return None
        try:
            data = json.loads(metadata)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("kind") != METADATA_KIND:
            return None
        offset, attempts = data.get("offset"), data.get("attempts")
        if _is_count(offset) and _is_count(attempts):
            return cls(offset, attempts)
        return None


class AttemptLedger:
    """Reads and writes attempt notes for one consumer group."""

    def __init__(self, group_id: str, client_options: dict[str, Any]):
        self._group_id = group_id
        self._client_options = client_options
        self._admin: AIOKafkaAdminClient | None = None
        # What the broker holds per partition, once read or written here;
        # None means "no note". Dropped for partitions (re)assigned to us.
        self._known: dict[TopicPartition, AttemptNote | None] = {}

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()

    async def load(self, partitions: Collection[TopicPartition]) -> None:
        """Read the notes of ``partitions`` afresh, in one request: another
        member may have written them while they were not ours.

        Called when partitions are assigned, so that a record failing later
        finds its note without a round trip. When the read fails, each
        partition's note is read when first needed instead.
        """
        for partition in partitions:
            self._known.pop(partition, None)
        if not partitions:
            return
        try:
            admin = await self._started_admin()
            committed = await admin.list_consumer_group_offsets(
                self._group_id, partitions=list(partitions)
            )
        except KafkaError as error:
            logger.warning("could not read attempt notes: %r", error)
            return
        for partition in partitions:
            entry = committed.get(partition)
            self._known[partition] = AttemptNote.decode(
                entry.metadata if entry else None
            )

    def cleared(self, partitions: Iterable[TopicPartition]) -> None:
        """A regular commit (no metadata) replaced the notes of ``partitions``."""
        for partition in partitions:
            self._known[partition] = None

    async def carried(self, topic: str, partition: int, offset: int) -> int:
        """In-place attempts made on the record at ``offset`` before this
        process took it (0 when the broker holds no note for it, or when it
        cannot be read: counting from the header alone, as without notes)."""
        key = TopicPartition(topic, partition)
        if key not in self._known:
            await self.load([key])
        note = self._known.get(key)
        return note.attempts if note is not None and note.offset == offset else 0

    async def remember(
        self,
        consumer: AIOKafkaConsumer,
        topic: str,
        partition: int,
        position: int,
        note: AttemptNote,
    ) -> None:
        """Commit ``position`` (an offset already safe to commit) with ``note``.

        Best effort: a failed write is logged, and the count is then only as
        good as it was without notes.
        """
        key = TopicPartition(topic, partition)
        try:
            await consumer.commit({key: (position, note.encode())})
        except KafkaError as error:  # CommitFailedError after a rebalance too
            logger.warning(
                "could not note attempts on %s-%s@%s: %r",
                topic,
                partition,
                note.offset,
                error,
            )
            self._known.pop(key, None)
            return
        self._known[key] = note

    async def _started_admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self._client_options)
            try:
                await admin.start()
            except BaseException:
                await admin.close()
                raise
            self._admin = admin
        return self._admin


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
