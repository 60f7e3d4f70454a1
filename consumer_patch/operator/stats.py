"""How many dead letters, of which kinds, how fast, and how many still need triage.

Depth is the number of dead letters after the triage group's committed
offsets: dead letters nobody has marked handled yet (``agent-dlq ack`` moves
the group). It is counted record by record, not as an offset difference,
so transaction markers on the topic never inflate it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from consumer_patch.operator.pacing import Progress
from consumer_patch.operator.reader import DeadLetterReader, DeadLetterRecord
from consumer_patch.operator.selection import Selection, failed_at_of
from consumer_patch.settings import Settings

RATE_WINDOW = timedelta(hours=1)

Kind = tuple[str, str, str]  # error type, category, original topic


@dataclass(frozen=True)
class Moment:
    """When a dead letter failed and where it sits."""

    failed_at: datetime
    partition: int
    offset: int


@dataclass
class DeadLetterStats:
    """Counts over a window, the last hour's rate and the depth."""

    dlq_topic: str
    triage_group: str
    now: datetime
    since: datetime | None
    until: datetime | None
    total: int = 0
    unreadable: int = 0
    by_kind: Counter[Kind] = field(default_factory=Counter)
    oldest: Moment | None = None
    newest: Moment | None = None
    last_hour: int = 0
    last_hour_by_type: Counter[str] = field(default_factory=Counter)
    depth: int = 0
    depth_by_type: Counter[str] = field(default_factory=Counter)
    depth_by_partition: dict[int, int] = field(default_factory=dict)
    committed: dict[int, int | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "dlq_topic": self.dlq_topic,
            "triage_group": self.triage_group,
            "now": _iso(self.now),
            "window": {
                "since": _iso(self.since) if self.since else None,
                "until": _iso(self.until) if self.until else None,
            },
            "total": self.total,
            "unreadable": self.unreadable,
            "by_kind": [
                {
                    "error_type": error_type,
                    "error_category": category,
                    "original_topic": topic,
                    "count": count,
                }
                for (error_type, category, topic), count in sorted(self.by_kind.items())
            ],
            "oldest": _moment_json(self.oldest),
            "newest": _moment_json(self.newest),
            "last_hour": {
                "count": self.last_hour,
                "rate_per_hour": self.last_hour,
                "by_error_type": dict(sorted(self.last_hour_by_type.items())),
            },
            "depth": {
                "total": self.depth,
                "by_error_type": dict(sorted(self.depth_by_type.items())),
                "by_partition": {
                    str(number): count
                    for number, count in sorted(self.depth_by_partition.items())
                },
                "committed_offsets": {
                    str(number): offset
                    for number, offset in sorted(self.committed.items())
                },
            },
        }


def moment_of(letter: DeadLetterRecord) -> datetime:
    """When the dead letter failed; the record's timestamp for unreadable ones."""
    if letter.envelope is not None:
        return failed_at_of(letter.envelope)
    return datetime.fromtimestamp(letter.timestamp_ms / 1000, UTC)


def summarize(
    letters: Iterable[DeadLetterRecord],
    *,
    dlq_topic: str,
    triage_group: str,
    committed: Mapping[int, int | None],
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> DeadLetterStats:
    """Fold dead letters into stats (pure: the caller chose what to read)."""
    stats = DeadLetterStats(
        dlq_topic,
        triage_group,
        now,
        since,
        until,
        committed=dict(committed),
        depth_by_partition=dict.fromkeys(committed, 0),
    )
    window = Selection(since=since, until=until)
    hour_ago = now - RATE_WINDOW
    for letter in letters:
        failed_at = moment_of(letter)
        error_type = letter.error_type
        if window.in_window(failed_at):
            _count(stats, letter, failed_at)
        if hour_ago < failed_at <= now:
            stats.last_hour += 1
            stats.last_hour_by_type[error_type] += 1
        if letter.offset >= (committed.get(letter.partition) or 0):
            stats.depth += 1
            stats.depth_by_type[error_type] += 1
            stats.depth_by_partition[letter.partition] = (
                stats.depth_by_partition.get(letter.partition, 0) + 1
            )
    return stats


async def collect_stats(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    progress_label: str | None = None,
) -> DeadLetterStats:
    """Read what the stats need from the dead-letter topic and summarize it.

    Note:
        The read starts at the earliest of: ``since``, an hour ago, and the
        triage group's committed offsets; with no ``since`` it reads every
        retained dead letter.
    """
    moment = now or datetime.now(UTC)
    async with DeadLetterReader(settings) as reader:
        partitions = await reader.partitions()
        committed = await reader.committed(partitions)
        bounds = await reader.bounds(partitions)
        from_offsets: dict[int, int] = {}
        for number, (first, _last) in bounds.items():
            offset = committed[number]
            from_offsets[number] = first if offset is None else offset
        starts, ends = await reader.plan(
            Selection(since=since),
            also_since=moment - RATE_WINDOW,
            also_from=from_offsets,
        )
        progress = None
        if progress_label is not None:
            total = sum(max(ends[n] - starts[n], 0) for n in starts)
            progress = Progress(progress_label, total)
        letters = [
            letter async for letter in reader.dead_letters(starts, ends, progress)
        ]
        if progress is not None:
            progress.close()
    return summarize(
        letters,
        dlq_topic=settings.kafka_dlq_topic,
        triage_group=settings.kafka_dlq_triage_group,
        committed=committed,
        now=moment,
        since=since,
        until=until,
    )


def _count(
    stats: DeadLetterStats, letter: DeadLetterRecord, failed_at: datetime
) -> None:
    stats.total += 1
    envelope = letter.envelope
    if envelope is None:
        stats.unreadable += 1
        stats.by_kind[(letter.error_type, "-", "-")] += 1
    else:
        stats.by_kind[
            (
                str(envelope["error_type"]),
                str(envelope["error_category"]),
                str(envelope["original_topic"]),
            )
        ] += 1
    here = Moment(failed_at, letter.partition, letter.offset)
    if stats.oldest is None or failed_at < stats.oldest.failed_at:
        stats.oldest = here
    if stats.newest is None or failed_at >= stats.newest.failed_at:
        stats.newest = here


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _moment_json(moment: Moment | None) -> dict[str, Any] | None:
    if moment is None:
        return None
    return {
        "failed_at": _iso(moment.failed_at),
        "position": f"{moment.partition}:{moment.offset}",
    }
