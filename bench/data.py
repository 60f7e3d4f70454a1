"""The streams the benchmarks read: agent actions with poison spread through.

Every stream is a pure function of its size, poison ratio and poison kinds,
so both sides of a comparison read exactly the same bytes, and a run can be
repeated. Poison records sit at evenly spread positions (the i-th record is
poison when ``floor((i + 1) * ratio)`` steps up), never in clumps.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiokafka import AIOKafkaProducer

from consumer_patch.records import ActionRecord

AGENTS = ("planner", "researcher", "writer", "reviewer", "executor")
ACTIONS = (
    ("tool_call", "search_docs"),
    ("tool_call", "run_sql"),
    ("decision", "choose_plan"),
    ("message", "reply_user"),
)
# The benchmark handler refuses (raises for) actions with this name; the
# record itself is a valid agent action, so only bisection can find it.
REFUSED_ACTION = "refuse-this-action"
SEND_WINDOW = 2_000


class Poison(Enum):
    """What makes a record poison."""

    NOT_UTF8 = "not UTF-8"
    NOT_JSON = "not JSON"
    INVALID = "invalid action"
    REFUSED = "refused by the handler"

    @property
    def is_undecodable(self) -> bool:
        return self in {Poison.NOT_UTF8, Poison.NOT_JSON}


UNDECODABLE = (Poison.NOT_UTF8, Poison.NOT_JSON)
DECODE_FAILURES = (Poison.NOT_UTF8, Poison.NOT_JSON, Poison.INVALID)
MIXED = (Poison.NOT_UTF8, Poison.REFUSED, Poison.NOT_JSON, Poison.REFUSED)


class RefusedActionError(ValueError):
    """Raised by the benchmark handler; a ValueError, so it counts as permanent."""


@dataclass(frozen=True)
class Stream:
    """Records to produce: (partition, key, value), and how many are poison."""

    records: list[tuple[int, bytes, bytes]]
    poison: Counter[Poison]

    @property
    def poison_count(self) -> int:
        return sum(self.poison.values())

    def __len__(self) -> int:
        return len(self.records)


def action(number: int) -> dict[str, Any]:
    action_type, action_name = ACTIONS[number % len(ACTIONS)]
    seconds = number % 86_400
    return {
        "correlation_id": f"bench-{number // 4:08d}",
        "agent_name": AGENTS[number % len(AGENTS)],
        "action_type": action_type,
        "action_name": action_name,
        "action_details": {"step": number, "tokens": 10 + number % 4000},
        "debug_mode": number % 10 == 0,
        "duration_ms": number % 5000,
        "timestamp": (
            f"2026-12-03T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
            f"{seconds % 60:02d}.{number % 1000:03d}Z"
        ),
    }


def poison_value(kind: Poison, number: int) -> bytes:
    text = json.dumps(action(number))
    if kind is Poison.NOT_UTF8:
        # A byte that starts no UTF-8 sequence, inside the first string. Not a
        # UTF-16 text with a byte-order mark: JSON parsers that detect the
        # encoding (Jackson, in Kafka Connect's JsonConverter) read that one.
        encoded = text.encode()
        cut = encoded.index(b'": "') + 4
        return encoded[:cut] + b"\xff" + encoded[cut:]
    if kind is Poison.NOT_JSON:
        return text.encode()[:-7]
    if kind is Poison.INVALID:
        return json.dumps({**action(number), "duration_ms": -1}).encode()
    return json.dumps({**action(number), "action_name": REFUSED_ACTION}).encode()


def is_poison_position(index: int, ratio: float) -> bool:
    return math.floor((index + 1) * ratio) > math.floor(index * ratio)


def make_stream(
    count: int,
    poison_ratio: float = 0.0,
    kinds: Sequence[Poison] = MIXED,
    partitions: int = 3,
) -> Stream:
    """``count`` records, ``poison_ratio`` of them poison, kinds taken in turn."""
    records: list[tuple[int, bytes, bytes]] = []
    poison: Counter[Poison] = Counter()
    for number in range(count):
        key = AGENTS[number % len(AGENTS)].encode()
        if poison_ratio > 0 and is_poison_position(number, poison_ratio):
            kind = kinds[sum(poison.values()) % len(kinds)]
            poison[kind] += 1
            value = poison_value(kind, number)
        else:
            value = json.dumps(action(number)).encode()
        records.append((number % partitions, key, value))
    return Stream(records, poison)


def batch_with_poison(size: int, poison_at: set[int], first_number: int) -> Stream:
    """One batch of ``size`` records, refused poison at the given positions."""
    records: list[tuple[int, bytes, bytes]] = []
    poison: Counter[Poison] = Counter()
    for position in range(size):
        number = first_number + position
        key = AGENTS[number % len(AGENTS)].encode()
        if position in poison_at:
            poison[Poison.REFUSED] += 1
            records.append((0, key, poison_value(Poison.REFUSED, number)))
        else:
            records.append((0, key, json.dumps(action(number)).encode()))
    return Stream(records, poison)


async def refusing_handler(records: Sequence[ActionRecord]) -> None:
    """Stores nothing, refuses any slice that holds a refused action."""
    for record in records:
        if record.action["action_name"] == REFUSED_ACTION:
            raise RefusedActionError("the handler refuses this action")


async def noop_handler(records: Sequence[ActionRecord]) -> None:
    """Stores nothing and never fails: the cost of everything but the store."""


async def produce(bootstrap_servers: str, topic: str, stream: Stream) -> None:
    """Write the stream with an idempotent ``acks=all`` producer, in order."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        linger_ms=20,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        pending = []
        for partition, key, value in stream.records:
            pending.append(
                await producer.send(topic, value=value, key=key, partition=partition)
            )
            if len(pending) >= SEND_WINDOW:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
