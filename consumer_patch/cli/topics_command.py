"""``agent-dlq topics create``: create the source and dead-letter topics."""

from __future__ import annotations

import argparse
import asyncio

from consumer_patch.cli.output import emit_json, table
from consumer_patch.settings import load_settings
from consumer_patch.topics import ensure_topics, pipeline_topics


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "topics",
        help="create the pipeline's topics with their declared settings",
        description="Create KAFKA_TOPIC and KAFKA_DLQ_TOPIC if they do not exist "
        "(3 partitions each; the dead-letter topic keeps 7 days).",
    )
    actions = parser.add_subparsers(dest="topics_action", required=True)
    create = actions.add_parser("create", help="create missing topics")
    create.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    settings = load_settings()
    specs = pipeline_topics(settings)
    created = asyncio.run(ensure_topics(settings.kafka_client_options(), specs))
    rows = [
        {
            "topic": spec.name,
            "partitions": spec.partitions,
            "state": "created" if spec.name in created else "exists",
        }
        for spec in specs
    ]
    if arguments.json:
        emit_json({"topics": rows})
    else:
        table(rows, ("topic", "partitions", "state"))
    return 0
