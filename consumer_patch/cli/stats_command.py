"""``agent-dlq stats``: counts by kind, oldest and newest, last hour's rate, depth."""

from __future__ import annotations

import argparse
import asyncio

from consumer_patch.cli.filters import add_time_window, check_window
from consumer_patch.cli.output import emit_json, table
from consumer_patch.operator.stats import DeadLetterStats, collect_stats
from consumer_patch.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="count dead letters by error type, category and topic; rate; depth",
        description="Count the dead letters on KAFKA_DLQ_TOPIC by error type, "
        "category and original topic over a time window (default: everything "
        "retained), with the oldest and newest, the number in the last hour, "
        "and the depth: dead letters after the committed offsets of the triage "
        "group KAFKA_DLQ_TRIAGE_GROUP (move it with `agent-dlq ack`).",
    )
    add_time_window(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run, command_parser=parser)


def run(arguments: argparse.Namespace) -> int:
    check_window(arguments.command_parser, arguments)
    settings = load_settings()
    stats = asyncio.run(
        collect_stats(
            settings,
            since=arguments.since,
            until=arguments.until,
            progress_label=None if arguments.json else "reading",
        )
    )
    if arguments.json:
        emit_json(stats.as_json())
    else:
        _print(stats)
    return 0


def _print(stats: DeadLetterStats) -> None:
    data = stats.as_json()
    window = data["window"]
    print(f"dead-letter topic  {stats.dlq_topic}")
    print(
        f"window             {window['since'] or 'start'} .. {window['until'] or 'now'}"
    )
    print(
        f"dead letters       {stats.total}"
        + (f" ({stats.unreadable} unreadable)" if stats.unreadable else "")
    )
    for label, moment in (("oldest", data["oldest"]), ("newest", data["newest"])):
        shown = (
            "-" if moment is None else f"{moment['failed_at']}  at {moment['position']}"
        )
        print(f"{label.ljust(18)} {shown}")
    print(f"last hour          {stats.last_hour} (rate {stats.last_hour}/hour)")
    print(
        f"depth              {stats.depth} not yet handled "
        f"(triage group {stats.triage_group})"
    )
    if data["by_kind"]:
        print()
        table(
            data["by_kind"], ("error_type", "error_category", "original_topic", "count")
        )
    if stats.depth_by_type:
        print()
        table(
            [
                {
                    "error_type": error_type,
                    "depth": count,
                    "last_hour": stats.last_hour_by_type.get(error_type, 0),
                }
                for error_type, count in sorted(stats.depth_by_type.items())
            ],
            ("error_type", "depth", "last_hour"),
        )
