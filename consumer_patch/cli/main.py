"""Entry point of ``agent-dlq``: one subcommand per job, errors without tracebacks."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from consumer_patch.cli import (
    ack_command,
    archive_command,
    consume_command,
    demo_command,
    list_command,
    redrive_command,
    replay_command,
    show_command,
    stack_command,
    stats_command,
    topics_command,
    watch_command,
)
from consumer_patch.errors import AgentDLQError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# aiokafka logs every coordinator discovery and group join at INFO; for people
# reading a table those lines are noise, so they show only with DEBUG.
CLIENT_LOGGERS = ("aiokafka", "kafka")

COMMANDS = (
    consume_command.register,
    demo_command.register,
    redrive_command.register,
    topics_command.register,
    stack_command.register,
    stats_command.register,
    list_command.register,
    show_command.register,
    replay_command.register,
    ack_command.register,
    watch_command.register,
    archive_command.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-dlq",
        description="Dead-letter handling for the agent-actions Kafka consumer.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level on stderr (default INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            code = _run(argv)
        finally:
            # Flush inside the guard, also after ``--help``: piped output is
            # block-buffered, so a reader that left shows up only here.
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``agent-dlq list | head``): not an error of
        # ours. Point stdout at /dev/null so the interpreter's final flush
        # does not raise again on the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    return code


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=arguments.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if arguments.log_level != "DEBUG":
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        code: int = arguments.handler(arguments)
    except AgentDLQError as error:
        print(f"agent-dlq: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KafkaError as error:
        # Commands name their own failures; this is the last resort for a
        # broker that went away mid-command, so no traceback reaches people.
        print(
            f"agent-dlq: error: Kafka: {type(error).__name__}: {error}", file=sys.stderr
        )
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
