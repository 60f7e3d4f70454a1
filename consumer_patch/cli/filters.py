"""Command-line filters shared by ``list``, ``replay`` and ``stats``.

Bad values are reported by argparse (``agent-dlq list: error: argument
--since: invalid time '2x': ...``, exit status 2), never as a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from consumer_patch.operator.errors import SelectionError
from consumer_patch.operator.selection import (
    OffsetRange,
    Position,
    Selection,
    parse_moment,
    parse_offset_range,
    parse_position,
)

CATEGORIES = ("transient", "permanent", "unknown")

T = TypeVar("T")


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    def convert(text: str) -> T:
        try:
            return parse(text)
        except SelectionError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__
    return convert


def moment(text: str) -> datetime:
    return parse_moment(text, datetime.now(UTC))


def offsets(text: str) -> OffsetRange:
    return parse_offset_range(text)


def position(text: str) -> tuple[str | None, Position]:
    return parse_position(text)


def natural(text: str) -> int:
    if not text.strip().isdigit():
        raise SelectionError(f"invalid number {text!r}: use a whole number >= 0")
    return int(text)


def positive(text: str) -> int:
    number = natural(text)
    if number < 1:
        raise SelectionError(f"invalid number {text!r}: use a whole number >= 1")
    return number


def rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise SelectionError(
            f"invalid rate {text!r}: use records per second, such as 50 or 0.5 "
            "(0 for no limit)"
        )
    return value


moment_argument = _argument(moment)
offsets_argument = _argument(offsets)
position_argument = _argument(position)
natural_argument = _argument(natural)
positive_argument = _argument(positive)
rate_argument = _argument(rate)


def add_time_window(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--since",
        type=moment_argument,
        metavar="TIME",
        help="dead letters that failed at or after TIME: a duration back from now "
        "(30m, 2h, 7d; units s m h d w) or an ISO date or date-time (UTC unless "
        "it says otherwise)",
    )
    parser.add_argument(
        "--until",
        type=moment_argument,
        metavar="TIME",
        help="dead letters that failed before TIME (same forms as --since)",
    )


def add_filters(parser: argparse.ArgumentParser) -> None:
    """The selection filters; repeated options of one kind are alternatives."""
    group = parser.add_argument_group("filters (all must match)")
    group.add_argument(
        "--error-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="error type, such as ValidationError (repeat for several)",
    )
    group.add_argument(
        "--category",
        action="append",
        default=[],
        choices=CATEGORIES,
        help="error category (repeat for several)",
    )
    group.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="TOPIC",
        help="original topic the record came from (repeat for several)",
    )
    group.add_argument(
        "--correlation-id",
        action="append",
        default=[],
        metavar="ID",
        help="correlation id of the action (repeat for several)",
    )
    add_time_window(group)
    group.add_argument(
        "--partition",
        action="append",
        default=[],
        type=natural_argument,
        metavar="N",
        help="partition of the dead-letter topic (repeat for several)",
    )
    group.add_argument(
        "--offsets",
        type=offsets_argument,
        metavar="RANGE",
        help="offsets on the dead-letter topic: N, FIRST-LAST, FIRST- or -LAST "
        "(both ends included)",
    )
    group.add_argument(
        "--original-partition",
        action="append",
        default=[],
        type=natural_argument,
        metavar="N",
        help="partition of the original record (repeat for several)",
    )
    group.add_argument(
        "--original-offsets",
        type=offsets_argument,
        metavar="RANGE",
        help="offsets of the original record (same forms as --offsets)",
    )


def selection_from(
    parser: argparse.ArgumentParser, arguments: argparse.Namespace
) -> Selection:
    """The selection the filter options describe; exits on contradictions."""
    check_window(parser, arguments)
    return Selection(
        error_types=frozenset(arguments.error_type),
        categories=frozenset(arguments.category),
        original_topics=frozenset(arguments.topic),
        correlation_ids=frozenset(arguments.correlation_id),
        since=arguments.since,
        until=arguments.until,
        partitions=frozenset(arguments.partition),
        offsets=arguments.offsets or OffsetRange(),
        original_partitions=frozenset(arguments.original_partition),
        original_offsets=arguments.original_offsets or OffsetRange(),
    )


def check_window(
    parser: argparse.ArgumentParser, arguments: argparse.Namespace
) -> None:
    since, until = arguments.since, arguments.until
    if since is not None and until is not None and since >= until:
        parser.error("--since must be before --until")
