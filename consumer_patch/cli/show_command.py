"""``agent-dlq show PARTITION:OFFSET``: one dead letter, whole, readable."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from consumer_patch.cli.filters import position_argument
from consumer_patch.cli.output import emit_json
from consumer_patch.envelope import decode_bytes, decode_headers
from consumer_patch.errors import EnvelopeError
from consumer_patch.operator.errors import OperatorError
from consumer_patch.operator.reader import DeadLetterReader, DeadLetterRecord
from consumer_patch.operator.selection import Position
from consumer_patch.settings import Settings, load_settings

FIELDS = (
    "dead_letter_id",
    "failed_at",
    "error_type",
    "error_category",
    "retry_count",
    "consumer_group",
    "correlation_id",
    "original_topic",
    "original_partition",
    "original_offset",
    "original_timestamp",
    "original_key",
    "original_key_encoding",
    "original_value_encoding",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "show",
        help="show one dead letter: envelope, error and original value",
        description="Show the dead letter at POSITION on KAFKA_DLQ_TOPIC: every "
        "envelope field, the error and traceback, the original headers, and the "
        "original value (pretty-printed when it is JSON).",
    )
    parser.add_argument(
        "position",
        type=position_argument,
        metavar="POSITION",
        help="PARTITION:OFFSET as `agent-dlq list` prints it, or "
        "TOPIC-PARTITION@OFFSET as in a replayed record's agent-dlq.replayed-from "
        "header",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(arguments: argparse.Namespace) -> int:
    topic, position = arguments.position
    settings = load_settings()
    if topic is not None and topic != settings.kafka_dlq_topic:
        raise OperatorError(
            f"{topic} is not the dead-letter topic ({settings.kafka_dlq_topic}); "
            "set KAFKA_DLQ_TOPIC to read another one"
        )
    letter = asyncio.run(_one(settings, position))
    if arguments.json:
        emit_json(as_json(letter))
    else:
        _print(letter)
    return 0


async def _one(settings: Settings, position: Position) -> DeadLetterRecord:
    async with DeadLetterReader(settings) as reader:
        return await reader.one(position)


def as_json(letter: DeadLetterRecord) -> dict[str, Any]:
    return {
        "dlq_topic": letter.topic,
        "position": str(letter.position),
        "record_timestamp_ms": letter.timestamp_ms,
        "record_headers": [
            {"key": name, "value": raw.decode("utf-8", errors="replace")}
            for name, raw in letter.headers
        ],
        "envelope": letter.envelope,
        "original_value_json": _original_json(letter.envelope),
        "problem": letter.problem,
    }


def _print(letter: DeadLetterRecord) -> None:
    print(f"dead letter {letter.pointer}  (position {letter.position})")
    envelope = letter.envelope
    if envelope is None:
        print(f"\nnot a readable envelope: {letter.problem}")
        print("\nraw value:")
        print(_text(letter.value))
        return

    width = max(len(name) for name in FIELDS)
    print()
    for name in FIELDS:
        value = envelope.get(name)
        print(f"{name.ljust(width)}  {'-' if value is None else value}")

    truncated = " (truncated)" if envelope.get("error_message_truncated") else ""
    print(f"\nerror message{truncated}:")
    print(_indent(str(envelope.get("error_message") or "")))
    trace = envelope.get("error_traceback")
    if trace:
        cut = " (truncated)" if envelope.get("error_traceback_truncated") else ""
        print(f"\ntraceback{cut}:")
        print(_indent(str(trace).rstrip()))

    original_headers = _headers(envelope)
    print(f"\noriginal headers ({len(original_headers)}):")
    for name, raw in original_headers:
        print(f"  {name}: {_text(raw)}")

    parsed = _original_json(envelope)
    if parsed is not None:
        print("\noriginal value (JSON):")
        print(json.dumps(parsed, indent=2, ensure_ascii=False, sort_keys=True))
    else:
        encoding = envelope.get("original_value_encoding")
        print(f"\noriginal value ({encoding or 'null'}):")
        print(_indent(str(envelope.get("original_value"))))


def _headers(envelope: dict[str, Any]) -> list[tuple[str, bytes | None]]:
    try:
        return decode_headers(envelope)
    except EnvelopeError:
        return []


def _original_json(envelope: dict[str, Any] | None) -> Any:
    if envelope is None or envelope.get("original_value_encoding") != "utf8":
        return None
    try:
        raw = decode_bytes(envelope["original_value"], "utf8")
        return json.loads(raw) if raw is not None else None
    except ValueError:
        return None


def _text(raw: bytes | None) -> str:
    if raw is None:
        return "null"
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"(not UTF-8, {len(raw)} bytes) {raw!r}"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines()) or "  -"
