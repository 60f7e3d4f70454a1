"""``agent-dlq list``: the dead letters that match filters, oldest first."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from consumer_patch.cli.filters import add_filters, positive_argument, selection_from
from consumer_patch.cli.output import emit_json, table
from consumer_patch.operator.reader import DeadLetterReader, DeadLetterRecord
from consumer_patch.operator.selection import Selection
from consumer_patch.operator.stats import moment_of
from consumer_patch.settings import Settings, load_settings

DEFAULT_LIMIT = 50
MESSAGE_WIDTH = 60
COLUMNS = (
    "position",
    "failed_at",
    "error_type",
    "category",
    "original",
    "correlation_id",
    "retries",
    "message",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "list",
        help="list dead letters, with filters",
        description="List the dead letters on KAFKA_DLQ_TOPIC that match every "
        "filter, oldest first. POSITION is PARTITION:OFFSET on the dead-letter "
        "topic; pass it to `agent-dlq show`.",
    )
    add_filters(parser)
    parser.add_argument(
        "--limit",
        type=positive_argument,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"show at most N dead letters (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--newest-first", action="store_true", help="newest dead letters first"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run, command_parser=parser)


def run(arguments: argparse.Namespace) -> int:
    selection = selection_from(arguments.command_parser, arguments)
    settings = load_settings()
    letters = asyncio.run(_select(settings, selection, arguments.json))
    letters.sort(
        key=lambda letter: (moment_of(letter), letter.partition, letter.offset),
        reverse=arguments.newest_first,
    )
    shown = letters[: arguments.limit]
    if arguments.json:
        emit_json(
            {
                "dlq_topic": settings.kafka_dlq_topic,
                "matched": len(letters),
                "shown": len(shown),
                "dead_letters": [summary(letter) for letter in shown],
            }
        )
        return 0
    rows = [summary(letter) for letter in shown]
    for row in rows:
        row["message"] = _shorten(row["message"])
    table(rows, COLUMNS)
    more = len(letters) - len(shown)
    if more > 0:
        print(f"... {more} more; raise --limit or narrow the filters")
    return 0


async def _select(
    settings: Settings, selection: Selection, quiet: bool
) -> list[DeadLetterRecord]:
    async with DeadLetterReader(settings) as reader:
        return await reader.select(selection, None if quiet else "reading")


def summary(letter: DeadLetterRecord) -> dict[str, Any]:
    """The fields people scan for; ``show`` prints the whole envelope."""
    envelope = letter.envelope
    base: dict[str, Any] = {
        "position": str(letter.position),
        "failed_at": moment_of(letter).isoformat(timespec="milliseconds"),
        "error_type": letter.error_type,
    }
    if envelope is None:
        return {**base, "message": letter.problem, "readable": False}
    return {
        **base,
        "category": envelope["error_category"],
        "original": (
            f"{envelope['original_topic']}-{envelope['original_partition']}"
            f"@{envelope['original_offset']}"
        ),
        "correlation_id": envelope["correlation_id"],
        "retries": envelope["retry_count"],
        "dead_letter_id": envelope["dead_letter_id"],
        "message": envelope["error_message"],
        "readable": True,
    }


def _shorten(text: object) -> str:
    line = " ".join(str(text or "").split())
    if len(line) <= MESSAGE_WIDTH:
        return line
    return line[: MESSAGE_WIDTH - 1] + "…"
