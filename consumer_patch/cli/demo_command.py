"""``agent-dlq demo``: the whole pipeline on the local stack, with poison."""

from __future__ import annotations

import argparse
import asyncio
import sys

from consumer_patch.cli.output import emit_json
from consumer_patch.demo import print_report, run_demo
from consumer_patch.settings import load_settings
from consumer_patch.stack import LocalStack


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the pipeline end to end on the local stack",
        description="Start the local stack, create the topics, run the consumer, "
        "produce agent actions with poison records of each kind, wait until all "
        "are stored or dead-lettered, and report.",
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
    _progress("bringing up the local stack (Kafka, PostgreSQL)...")
    environment = LocalStack().up()
    settings = load_settings(
        kafka_bootstrap_servers=environment["KAFKA_BOOTSTRAP_SERVERS"],
        postgres_dsn=environment["POSTGRES_DSN"],
        kafka_security_protocol="PLAINTEXT",
    )
    report = asyncio.run(
        run_demo(settings, arguments.records, arguments.poison_every, _progress)
    )
    if arguments.json:
        emit_json(report.as_json())
    else:
        print_report(report)
    return 0
