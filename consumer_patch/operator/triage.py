"""Mark dead letters as handled by moving the triage group's committed offsets.

The triage group (``KAFKA_DLQ_TRIAGE_GROUP``) never consumes: its committed
offset on each partition of the dead-letter topic is the first dead letter
nobody has handled yet. ``stats`` and ``watch`` count depth from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consumer_patch.operator.errors import OperatorError
from consumer_patch.operator.reader import DeadLetterReader
from consumer_patch.operator.selection import Position
from consumer_patch.settings import Settings


@dataclass(frozen=True)
class Acknowledgement:
    partition: int
    before: int | None
    after: int

    @property
    def moved(self) -> bool:
        return self.before is None or self.after > self.before


async def acknowledge(
    settings: Settings,
    *,
    through: Position | None = None,
    before: datetime | None = None,
    everything: bool = False,
    dry_run: bool = False,
) -> list[Acknowledgement]:
    """Mark dead letters handled: up to and including ``through`` on its
    partition, those that failed before ``before``, or ``everything`` up to the
    current end.

    Note:
        Offsets only move forward; a target behind the committed offset leaves
        the partition as it is. ``before`` uses record timestamps, which the
        producer sets right after the envelope's ``failed_at``.

    Raises:
        OperatorError: no or several targets given, or ``through`` is outside
            the topic.
    """
    chosen = [through is not None, before is not None, everything]
    if chosen.count(True) != 1:
        raise OperatorError("give exactly one of a position, a time, or everything")

    async with DeadLetterReader(settings) as reader:
        partitions = await reader.partitions()
        bounds = await reader.bounds(partitions)
        committed = await reader.committed(partitions)
        targets: dict[int, int] = {}
        if through is not None:
            if through.partition not in bounds:
                raise OperatorError(
                    f"{reader.topic} has no partition {through.partition}"
                )
            last = bounds[through.partition][1]
            if through.offset >= last:
                raise OperatorError(
                    f"{through} is past the end of partition {through.partition} "
                    f"(next offset {last})"
                )
            targets[through.partition] = through.offset + 1
        elif before is not None:
            found = await reader.offsets_at(partitions, before)
            for number, offset in found.items():
                targets[number] = bounds[number][1] if offset is None else offset
        else:
            targets = {number: last for number, (_first, last) in bounds.items()}

        results = [
            Acknowledgement(
                number,
                committed[number],
                max(target, committed[number] or 0),
            )
            for number, target in sorted(targets.items())
        ]
        moves = {ack.partition: ack.after for ack in results if ack.moved}
        if moves and not dry_run:
            await reader.commit(moves)
    return results
