"""Every record ends stored exactly once or dead-lettered with its exact bytes.

Runs the real consumer against the local Kafka and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import pytest

from consumer_patch import headers
from consumer_patch.envelope import decode_bytes, decode_headers
from consumer_patch.errors import UnhandledRecordError
from consumer_patch.records import ActionRecord
from consumer_patch.schemas import ENVELOPE_SCHEMA, validator
from consumer_patch.settings import Settings
from tests.conftest import Services
from tests.support.kafka_io import (
    Outgoing,
    action_bytes,
    envelopes,
    produce,
    read_topic,
    set_topic_config,
)
from tests.support.pipeline import (
    committed_offsets,
    pipeline_settings,
    running_consumer,
    stored_rows,
    wait_until,
    wait_until_drained,
)

DECODE_POISON: dict[str, Callable[[int], bytes | None]] = {
    "NullValueError": lambda n: None,
    "NotUTF8Error": lambda n: b"\xff\xfe\xfa binary %d" % n,
    "NotJSONError": lambda n: b"{this is not json %d" % n,
    "ValidationError": lambda n: json.dumps({"correlation_id": f"bad-{n}"}).encode(),
}
# Valid agent actions that PostgreSQL refuses: text cannot hold NUL, and
# jsonb refuses the \u0000 escape. Only bisection can find these.
DATABASE_POISON: dict[str, Callable[[int], bytes]] = {
    "nul-in-text": lambda n: action_bytes(f"db-text-{n}", agent_name="a\u0000b"),
    "nul-in-jsonb": lambda n: action_bytes(
        f"db-json-{n}", action_details={"x": "\u0000"}
    ),
}


def _stream(
    valid: int, each_poison: int, seed: int
) -> tuple[list[Outgoing], list[Outgoing]]:
    good = [
        Outgoing(
            action_bytes(f"ok-{n}"),
            key=f"agent-{n % 7}".encode(),
            headers=[("n", b"%d" % n)],
        )
        for n in range(valid)
    ]
    bad = [
        Outgoing(
            make(n),
            key=_poison_key(kind, n),
            headers=[("kind", kind.encode())],
        )
        for kind, make in {**DECODE_POISON, **DATABASE_POISON}.items()
        for n in range(each_poison)
    ]
    stream = good + bad
    random.Random(seed).shuffle(stream)
    return stream, bad


def _poison_key(kind: str, n: int) -> bytes | None:
    # The producer client refuses a record whose key and value are both null.
    if kind == "NullValueError":
        return b"null-value-key"
    return None if n % 2 else b"\xff\x00key"


def _identity(
    item: Outgoing,
) -> tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]:
    return item.key, item.value, tuple(item.headers)


async def test_mixed_stream_stores_each_valid_action_once_and_dead_letters_each_poison(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(services, unique)
    stream, poison = _stream(valid=2000, each_poison=4, seed=1)
    await produce(services.bootstrap_servers, settings.kafka_topic, stream)

    async with running_consumer(settings) as (consumer, task):
        await wait_until_drained(
            services, settings, what="offsets committed to the end"
        )
        still_running = not task.done()

    rows = await stored_rows(services.postgres_dsn, settings.kafka_topic)
    dead = await read_topic(
        services.bootstrap_servers, settings.kafka_dlq_topic, len(poison)
    )
    letters = envelopes(dead)

    assert still_running
    correlation_ids = Counter(row["correlation_id"] for row in rows)
    assert len(rows) == 2000
    assert set(correlation_ids) == {f"ok-{n}" for n in range(2000)}
    assert max(correlation_ids.values()) == 1
    assert len(letters) == len(poison)
    for letter in letters:
        assert validator(ENVELOPE_SCHEMA).is_valid(letter), letter["dead_letter_id"]
    recovered = sorted(
        (
            (
                decode_bytes(e["original_key"], e["original_key_encoding"]),
                decode_bytes(e["original_value"], e["original_value_encoding"]),
                tuple(decode_headers(e)),
            )
            for e in letters
        ),
        key=repr,
    )
    assert recovered == sorted((_identity(item) for item in poison), key=repr)
    by_kind = Counter(
        (dict(decode_headers(e))["kind"].decode(), e["error_type"]) for e in letters
    )
    for kind in DECODE_POISON:
        assert by_kind[(kind, kind)] == 4, by_kind
    database_types = {t for (kind, t) in by_kind if kind in DATABASE_POISON}
    assert database_types.isdisjoint(DECODE_POISON), by_kind
    assert all(e["error_category"] == "permanent" for e in letters)
    assert consumer.metrics.dead_letters.collect()[0].samples


async def test_schema_invalid_action_is_dead_lettered_as_validation_error(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(services, unique)
    bad_value = json.dumps({"correlation_id": "c-1", "agent_name": "planner"}).encode()
    await produce(
        services.bootstrap_servers, settings.kafka_topic, [Outgoing(bad_value)]
    )

    async with running_consumer(settings):
        dead = await read_topic(services.bootstrap_servers, settings.kafka_dlq_topic, 1)

    assert len(dead) == 1
    letter = json.loads(dead[0].value)
    assert letter["error_type"] == "ValidationError"
    assert letter["original_value"].encode() == bad_value
    assert letter["correlation_id"] == "c-1"
    assert letter["retry_count"] == 1
    record_headers = dict(dead[0].headers)
    assert record_headers[headers.ERROR_TYPE] == b"ValidationError"
    assert record_headers[headers.ORIGINAL_TOPIC] == settings.kafka_topic.encode()
    assert record_headers[headers.RETRY_COUNT] == b"1"


async def test_dead_letter_keeps_the_original_key_and_partitioning(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(services, unique)
    await produce(
        services.bootstrap_servers,
        settings.kafka_topic,
        [Outgoing(b"not json", key=b"agent-42", headers=[("trace", b"t-1")])],
    )

    async with running_consumer(settings):
        dead = await read_topic(services.bootstrap_servers, settings.kafka_dlq_topic, 1)

    assert dead[0].key == b"agent-42"
    assert ("trace", b"t-1") in list(dead[0].headers)


@pytest.mark.parametrize(
    "failing",
    [
        b"{broken",
        # PostgreSQL refuses a NUL character in text: a permanent database error.
        action_bytes("refused", agent_name="nul\u0000"),
    ],
    ids=["undecodable", "refused-by-database"],
)
async def test_with_dead_lettering_disabled_the_consumer_stops_before_the_failure(
    services: Services, unique: Callable[[str], str], failing: bytes
) -> None:
    settings = await pipeline_settings(services, unique, kafka_dlq_enabled=False)
    stream = [Outgoing(action_bytes(f"ok-{n}"), partition=0) for n in range(10)]
    stream.insert(5, Outgoing(failing, partition=0))
    await produce(services.bootstrap_servers, settings.kafka_topic, stream)

    with pytest.raises(UnhandledRecordError) as caught:
        async with running_consumer(settings) as (_consumer, task):
            await task

    committed = await committed_offsets(
        services.bootstrap_servers, settings.kafka_group_id
    )
    dead = await read_topic(
        services.bootstrap_servers, settings.kafka_dlq_topic, 0, wait_seconds=2
    )
    assert caught.value.offset == 5
    assert [offset for tp, offset in committed.items() if tp.partition == 0] == [5]
    assert dead == []


async def test_unwritable_dead_letter_topic_holds_position_until_it_is_restored(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(services, unique)
    first = [Outgoing(action_bytes(f"ok-{n}"), partition=0) for n in range(20)]
    await produce(services.bootstrap_servers, settings.kafka_topic, first)

    async with running_consumer(settings) as (consumer, task):
        # Mid-stream: the consumer has committed the first 20 records when
        # the dead-letter topic stops taking the envelopes (too large).
        await wait_until_drained(
            services, settings, what="the first records to be committed"
        )
        await set_topic_config(
            services.bootstrap_servers,
            settings.kafka_dlq_topic,
            "max.message.bytes",
            "200",
        )
        rest = [Outgoing(action_bytes(f"ok-{n}"), partition=0) for n in range(20, 30)]
        rest.insert(0, Outgoing(b"poison", partition=0))  # offset 20
        await produce(services.bootstrap_servers, settings.kafka_topic, rest)
        await wait_until(
            _failed_publish(consumer),
            wait_seconds=30,
            what="a failed dead-letter write",
        )
        unhealthy = not consumer.health.is_healthy
        held = [
            await _partition_zero_offset(services, settings),
            await _after(2.0, _partition_zero_offset(services, settings)),
        ]

        await set_topic_config(
            services.bootstrap_servers,
            settings.kafka_dlq_topic,
            "max.message.bytes",
            "8388608",
        )
        await wait_until_drained(
            services, settings, what="progress after the topic was restored"
        )
        healthy_again = consumer.health.is_healthy
        assert not task.done()

    dead = await read_topic(services.bootstrap_servers, settings.kafka_dlq_topic, 1)
    rows = await stored_rows(services.postgres_dsn, settings.kafka_topic)
    assert held == [20, 20], "committed past the record the DLQ could not take"
    assert unhealthy
    assert healthy_again
    assert [json.loads(record.value)["original_offset"] for record in dead] == [20]
    assert sorted(row["source_offset"] for row in rows) == [
        *range(20),
        *range(21, 31),
    ]


async def test_bisection_stores_good_neighbours_of_a_record_the_handler_rejects(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(services, unique, kafka_batch_size=64)
    rejected = {"ok-17", "ok-40"}
    stored: list[str] = []

    async def handler(records: Sequence[ActionRecord]) -> None:
        ids = [record.action["correlation_id"] for record in records]
        if rejected.intersection(ids):
            raise ValueError("rejected by the handler")
        stored.extend(ids)

    stream = [Outgoing(action_bytes(f"ok-{n}"), partition=0) for n in range(64)]
    await produce(services.bootstrap_servers, settings.kafka_topic, stream)

    async with running_consumer(settings, handler=handler):
        dead = await read_topic(services.bootstrap_servers, settings.kafka_dlq_topic, 2)

    assert sorted(stored) == sorted(
        f"ok-{n}" for n in range(64) if f"ok-{n}" not in rejected
    )
    assert sorted(
        json.loads(record.value)["correlation_id"] for record in dead
    ) == sorted(rejected)
    assert {json.loads(record.value)["error_type"] for record in dead} == {"ValueError"}


def _failed_publish(consumer: object) -> Callable[[], object]:
    async def check() -> bool:
        metrics = consumer.metrics  # type: ignore[attr-defined]
        samples = metrics.dead_letter_publish_failures.collect()[0].samples
        return any(sample.value > 0 for sample in samples)

    return check


async def test_largest_record_the_source_topic_allows_round_trips_through_the_dlq(
    services: Services, unique: Callable[[str], str]
) -> None:
    settings = await pipeline_settings(services, unique)
    # The broker's default message.max.bytes is 1 MiB + 12; leave room for
    # the record framing. Not UTF-8, so the envelope carries it as base64.
    value = bytes(range(256)) * 4000
    header_value = b"\xfe" * 1000
    await produce(
        services.bootstrap_servers,
        settings.kafka_topic,
        [Outgoing(value, key=b"\x00big", headers=[("blob", header_value)])],
    )

    async with running_consumer(settings):
        dead = await read_topic(services.bootstrap_servers, settings.kafka_dlq_topic, 1)

    letter = json.loads(dead[0].value)
    assert letter["error_type"] == "NotUTF8Error"
    assert letter["original_value_encoding"] == "base64"
    assert decode_bytes(letter["original_value"], "base64") == value
    assert decode_headers(letter) == [("blob", header_value)]
    assert dead[0].key == b"\x00big"


async def _partition_zero_offset(services: Services, settings: Settings) -> int:
    committed = await committed_offsets(
        services.bootstrap_servers, settings.kafka_group_id
    )
    return next(
        offset
        for tp, offset in committed.items()
        if tp.topic == settings.kafka_topic and tp.partition == 0
    )


async def _after(seconds: float, value: Awaitable[int]) -> int:
    await asyncio.sleep(seconds)
    return await value
