"""``agent-dlq consume``: run the dead-letter consumer until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio

from consumer_patch.app import run_consumer
from consumer_patch.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "consume",
        help="consume agent actions into PostgreSQL, dead-lettering failures",
        description="Consume KAFKA_TOPIC into PostgreSQL (POSTGRES_DSN); records that "
        "fail go to KAFKA_DLQ_TOPIC. Settings come from the environment and .env. "
        "SIGTERM or SIGINT finishes the current batch, commits and exits 0.",
    )
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    settings = load_settings()
    asyncio.run(run_consumer(settings))
    return 0
