"""``agent-dlq demo``: the whole pipeline on the local stack, with poison."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from consumer_patch.archive.demo_step import (
    archived_dead_letters,
    print_archived_dead_letters,
)
from consumer_patch.cli.output import emit_json
from consumer_patch.connector import DEFAULT_ARCHIVE_LAYOUT
from consumer_patch.demo import DemoReport, print_report, run_demo
from consumer_patch.settings import Settings, load_settings
from consumer_patch.stack import LocalStack

# The sink stores what it read every 5 s on the local stack.
ARCHIVE_WAIT_SECONDS = 60.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the pipeline end to end on the local stack",
        description="Start the local stack, create the topics, run the consumer, "
        "produce agent actions with poison records of each kind, wait until all "
        "are stored or dead-lettered, report, and show the dead letters found in "
        "the S3 archive.",
    )
    parser.add_argument(
        "--records", type=_positive, default=2000, help="records to produce (2000)"
    )
    parser.add_argument(
        "--poison-every",
        type=_positive,
        default=40,
        metavar="N",
        help="one poison record in every N (40)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(arguments: argparse.Namespace) -> int:
    _progress("bringing up the local stack (Kafka, PostgreSQL, S3, Kafka Connect)...")
    environment = LocalStack().up()
    settings = load_settings(
        kafka_bootstrap_servers=environment["KAFKA_BOOTSTRAP_SERVERS"],
        postgres_dsn=environment["POSTGRES_DSN"],
        kafka_security_protocol="PLAINTEXT",
    )
    started_at = datetime.now(UTC)
    report = asyncio.run(
        run_demo(settings, arguments.records, arguments.poison_every, _progress)
    )
    archived = _archived(environment, settings, report, started_at)
    report.extra["archived_dead_letters"] = len(archived)
    if arguments.json:
        emit_json(report.as_json())
    else:
        print_report(report)
        print_archived_dead_letters(archived)
    return 0


def _archived(
    environment: dict[str, str],
    settings: Settings,
    report: DemoReport,
    started_at: datetime,
) -> list[dict[str, Any]]:
    # The stack's sink archives the default dead-letter topic only.
    if settings.kafka_dlq_topic != DEFAULT_ARCHIVE_LAYOUT.topic:
        _progress(f"{settings.kafka_dlq_topic} is not archived by the local stack")
        return []
    _progress("waiting for this run's dead letters in the S3 archive...")
    return archived_dead_letters(
        environment,
        ARCHIVE_WAIT_SECONDS,
        failed_since=started_at,
        original_topic=settings.kafka_topic,
        expected=sum(report.dead_lettered.values()),
    )
