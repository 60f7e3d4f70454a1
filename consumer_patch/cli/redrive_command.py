"""``agent-dlq redrive``: send transient dead letters back after their delay."""

from __future__ import annotations

import argparse
import asyncio
import signal

from consumer_patch.cli.output import emit_json, table
from consumer_patch.redrive import RedriveSummary, RedriveWorker
from consumer_patch.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "redrive",
        help="re-publish transient dead letters to their topic after a delay",
        description="Consume KAFKA_DLQ_TOPIC in the group KAFKA_REDRIVE_GROUP_ID. "
        "Transient and unknown dead letters go back to their original topic after "
        "KAFKA_REDRIVE_DELAY_MS * 2^(retry_count-1) (capped by "
        "KAFKA_REDRIVE_MAX_DELAY_MS); permanent ones and those whose retry_count "
        "reached KAFKA_MAX_ATTEMPTS stay parked. Runs until SIGTERM/SIGINT.",
    )
    parser.add_argument(
        "--until-caught-up",
        action="store_true",
        help="exit once every dead letter present at start is redriven or parked",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


async def _run(arguments: argparse.Namespace) -> RedriveSummary:
    worker = RedriveWorker(load_settings())
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, worker.request_stop)
    await worker.start()
    try:
        return await worker.run(until_caught_up=arguments.until_caught_up)
    finally:
        await worker.stop()


def run(arguments: argparse.Namespace) -> int:
    summary = asyncio.run(_run(arguments))
    if arguments.json:
        emit_json(summary.as_json())
        return 0
    rows = [
        {"outcome": "redriven", "reason_or_topic": topic, "dead_letters": count}
        for topic, count in sorted(summary.redriven.items())
    ] + [
        {"outcome": "parked", "reason_or_topic": reason, "dead_letters": count}
        for reason, count in sorted(summary.parked.items())
    ]
    table(rows, ("outcome", "reason_or_topic", "dead_letters"))
    return 0
