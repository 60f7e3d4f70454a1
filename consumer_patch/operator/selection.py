"""Which dead letters a command works on: filters, time windows and positions.

Everything here is pure: parsing what an operator types (``2h``, an ISO date,
``1:42``, ``10-20``) and deciding whether one dead letter matches. Parse
errors raise ``SelectionError`` with a message meant to be shown as is.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from consumer_patch.operator.errors import SelectionError

DURATION = re.compile(r"(?P<amount>\d+)(?P<unit>[smhdw])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
# "<topic>-<partition>@<offset>", as in the replayed-from header.
POINTER = re.compile(r"(?P<topic>[a-zA-Z0-9._-]+)-(?P<partition>\d+)@(?P<offset>\d+)")
COLON_POSITION = re.compile(r"(?P<partition>\d+):(?P<offset>\d+)")
OFFSET_RANGE = re.compile(r"(?P<first>\d*)-(?P<last>\d*)|(?P<single>\d+)")


def parse_moment(text: str, now: datetime) -> datetime:
    """A point in time: a duration back from ``now`` (``90s``, ``15m``, ``2h``,
    ``7d``, ``1w``) or an ISO 8601 date or date-time (naive means UTC).

    Raises:
        SelectionError: neither form.
    """
    stripped = text.strip()
    duration = DURATION.fullmatch(stripped)
    if duration:
        seconds = int(duration["amount"]) * UNIT_SECONDS[duration["unit"]]
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise SelectionError(
            f"invalid time {text!r}: use a duration back from now such as 30m, 2h "
            "or 7d (units s, m, h, d, w), or an ISO 8601 date or date-time such as "
            "2026-05-01 or 2026-05-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Position:
    """A dead letter's place on the dead-letter topic."""

    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"


def parse_position(text: str) -> tuple[str | None, Position]:
    """``PARTITION:OFFSET`` or ``TOPIC-PARTITION@OFFSET`` (the replayed-from form).

    Returns:
        The topic when the text names one, and the position.

    Raises:
        SelectionError: neither form.
    """
    stripped = text.strip()
    colon = COLON_POSITION.fullmatch(stripped)
    if colon:
        return None, Position(int(colon["partition"]), int(colon["offset"]))
    pointer = POINTER.fullmatch(stripped)
    if pointer:
        position = Position(int(pointer["partition"]), int(pointer["offset"]))
        return pointer["topic"], position
    raise SelectionError(
        f"invalid position {text!r}: use PARTITION:OFFSET such as 1:42, or "
        "TOPIC-PARTITION@OFFSET as in the agent-dlq.replayed-from header"
    )


@dataclass(frozen=True)
class OffsetRange:
    """Offsets from ``first`` to ``last``, both included; None is open."""

    first: int | None = None
    last: int | None = None

    def __contains__(self, offset: object) -> bool:
        if not isinstance(offset, int):
            return False
        if self.first is not None and offset < self.first:
            return False
        return self.last is None or offset <= self.last


def parse_offset_range(text: str) -> OffsetRange:
    """``N`` (one offset), ``A-B`` (both included), ``A-`` or ``-B`` (open).

    Raises:
        SelectionError: another form, or A after B.
    """
    found = OFFSET_RANGE.fullmatch(text.strip())
    if not found or text.strip() == "-":
        raise SelectionError(
            f"invalid offset range {text!r}: use N, FIRST-LAST, FIRST- or -LAST "
            "with whole numbers (both ends included)"
        )
    if found["single"] is not None:
        single = int(found["single"])
        return OffsetRange(single, single)
    first = int(found["first"]) if found["first"] else None
    last = int(found["last"]) if found["last"] else None
    if first is not None and last is not None and first > last:
        raise SelectionError(f"invalid offset range {text!r}: {first} is after {last}")
    return OffsetRange(first, last)


@dataclass(frozen=True)
class Selection:
    """Filters on dead letters; an empty filter selects everything.

    Partitions and offsets are those of the dead-letter topic (what ``list``
    shows and ``show`` takes); the ``original_*`` filters are those of the
    source record. Time bounds apply to ``failed_at``: ``since`` included,
    ``until`` excluded.
    """

    error_types: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    original_topics: frozenset[str] = frozenset()
    correlation_ids: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    partitions: frozenset[int] = frozenset()
    offsets: OffsetRange = field(default_factory=OffsetRange)
    original_partitions: frozenset[int] = frozenset()
    original_offsets: OffsetRange = field(default_factory=OffsetRange)

    @property
    def is_everything(self) -> bool:
        return self == Selection()

    def wants_partition(self, partition: int) -> bool:
        return not self.partitions or partition in self.partitions

    def wants_position(self, partition: int, offset: int) -> bool:
        return self.wants_partition(partition) and offset in self.offsets

    def matches(self, envelope: dict[str, Any]) -> bool:
        """Whether a parsed envelope passes every filter but the position ones."""
        checks = (
            _among(envelope.get("error_type"), self.error_types),
            _among(envelope.get("error_category"), self.categories),
            _among(envelope.get("original_topic"), self.original_topics),
            _among(envelope.get("correlation_id"), self.correlation_ids),
            _among(envelope.get("original_partition"), self.original_partitions),
            envelope.get("original_offset") in self.original_offsets,
        )
        return all(checks) and self.in_window(failed_at_of(envelope))

    def in_window(self, moment: datetime) -> bool:
        if self.since is not None and moment < self.since:
            return False
        return self.until is None or moment < self.until


def failed_at_of(envelope: dict[str, Any]) -> datetime:
    """The envelope's ``failed_at`` as an aware UTC datetime."""
    moment = datetime.fromisoformat(str(envelope["failed_at"]))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _among(value: object, wanted: Collection[object]) -> bool:
    return not wanted or value in wanted
