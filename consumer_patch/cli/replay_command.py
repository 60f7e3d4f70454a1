"""``agent-dlq replay``: send selected dead letters' originals again, once each."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from consumer_patch.cli.exit_codes import EXIT_INTERRUPTED
from consumer_patch.cli.filters import add_filters, rate_argument, selection_from
from consumer_patch.cli.output import emit_json, table
from consumer_patch.operator.replay import (
    DEFAULT_RATE_PER_SECOND,
    ReplayReport,
    replay,
)
from consumer_patch.operator.selection import Selection
from consumer_patch.settings import Settings, load_settings

ROW_COLUMNS = (
    "position",
    "target",
    "error_type",
    "correlation_id",
    "original",
    "state",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="re-publish dead letters' original records (filters, dry run, rate)",
        description="Send the original key, value and headers of each selected "
        "dead letter to its original topic (or --to TOPIC), with the headers "
        "agent-dlq.retry-count and agent-dlq.replayed-from. Only topics in "
        "KAFKA_REPLAY_ALLOWED_TOPICS (default: KAFKA_TOPIC) are accepted, never "
        "the dead-letter topic. Each dead letter is replayed at most once per "
        "target: a ledger topic (KAFKA_REPLAY_LEDGER_TOPIC) records it in the same "
        "transaction, so running the same command again, or after an "
        "interruption, sends only what was not sent yet.",
    )
    add_filters(parser)
    parser.add_argument(
        "--all",
        action="store_true",
        help="replay every dead letter (needed when no filter is given)",
    )
    parser.add_argument(
        "--to", metavar="TOPIC", help="send to TOPIC instead of the original topic"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be sent; send and record nothing",
    )
    parser.add_argument(
        "--rate",
        type=rate_argument,
        default=DEFAULT_RATE_PER_SECOND,
        metavar="N",
        help=f"at most N records per second (default {DEFAULT_RATE_PER_SECOND:g}; "
        "0 for no limit)",
    )
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="draw a progress bar on stderr (default: when stderr is a terminal)",
    )
    bar.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run, command_parser=parser)


def run(arguments: argparse.Namespace) -> int:
    selection = selection_from(arguments.command_parser, arguments)
    if selection.is_everything and not arguments.all:
        arguments.command_parser.error(
            "no filter given: pass --all to replay every dead letter, or narrow "
            "the selection (see --help)"
        )
    settings = load_settings()
    report = asyncio.run(_replay(settings, selection, arguments))
    if arguments.json:
        emit_json(report.as_json())
    else:
        _print(report)
    return EXIT_INTERRUPTED if report.interrupted else 0


async def _replay(
    settings: Settings, selection: Selection, arguments: argparse.Namespace
) -> ReplayReport:
    # Ctrl-C and SIGTERM finish the open transaction and report; the next run
    # resumes from the ledger.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, stop.set)
    try:
        return await replay(
            settings,
            selection,
            target=arguments.to,
            dry_run=arguments.dry_run,
            rate=arguments.rate,
            progress=arguments.progress,
            stop=stop,
        )
    finally:
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(stop_signal)


def _print(report: ReplayReport) -> None:
    state = "would send" if report.dry_run else "sent"
    if report.rows:
        table([row.as_row(state) for row in report.rows], ROW_COLUMNS)
        print()
    verb = "would send" if report.dry_run else "sent"
    count = len(report.rows) if report.dry_run else report.sent
    targets = ", ".join(f"{topic}: {n}" for topic, n in sorted(report.targets.items()))
    print(
        f"selected {report.selected}; {verb} {count}"
        + (f" ({targets})" if targets else "")
    )
    print(f"already replayed (skipped): {report.already_replayed}")
    if report.duplicates:
        print(f"duplicate dead letters (skipped): {report.duplicates}")
    if report.unreadable:
        print(f"unreadable dead letters (skipped): {report.unreadable}")
    if report.interrupted:
        print(
            "interrupted: run the same command again to send the rest",
            file=sys.stderr,
        )
