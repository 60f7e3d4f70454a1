"""``agent-dlq ack``: mark dead letters handled, which lowers the depth."""

from __future__ import annotations

import argparse
import asyncio

from consumer_patch.cli.filters import moment_argument, position_argument
from consumer_patch.cli.output import emit_json, table
from consumer_patch.operator.errors import OperatorError
from consumer_patch.operator.triage import acknowledge
from consumer_patch.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ack",
        help="mark dead letters as handled (moves the triage group's offsets)",
        description="Mark dead letters on KAFKA_DLQ_TOPIC as handled by moving the "
        "committed offsets of the triage group KAFKA_DLQ_TRIAGE_GROUP forward. "
        "`stats` and `watch` count depth from those offsets. Offsets never move "
        "back.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--through",
        type=position_argument,
        metavar="POSITION",
        help="everything on that partition up to and including PARTITION:OFFSET",
    )
    target.add_argument(
        "--before",
        type=moment_argument,
        metavar="TIME",
        help="everything that failed before TIME (30m, 2h, an ISO date-time)",
    )
    target.add_argument(
        "--all", action="store_true", help="everything up to now, on every partition"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show the moves without making them"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    settings = load_settings()
    through = None
    if arguments.through is not None:
        topic, through = arguments.through
        if topic is not None and topic != settings.kafka_dlq_topic:
            raise OperatorError(
                f"{topic} is not the dead-letter topic ({settings.kafka_dlq_topic})"
            )
    results = asyncio.run(
        acknowledge(
            settings,
            through=through,
            before=arguments.before,
            everything=arguments.all,
            dry_run=arguments.dry_run,
        )
    )
    rows = [
        {
            "partition": ack.partition,
            "before": ack.before,
            "after": ack.after,
            "state": ("would move" if arguments.dry_run else "moved")
            if ack.moved
            else "unchanged",
        }
        for ack in results
    ]
    if arguments.json:
        emit_json(
            {
                "triage_group": settings.kafka_dlq_triage_group,
                "dry_run": arguments.dry_run,
                "partitions": rows,
            }
        )
    else:
        table(rows, ("partition", "before", "after", "state"))
    return 0
