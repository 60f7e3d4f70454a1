"""replay sends each selected dead letter's original once, byte for byte.

Against the real broker: a dry run sends nothing; a second identical run
sends nothing; a run killed with SIGKILL and started again sends the rest,
and read_committed readers see every record exactly once; targets outside
the allow-list, and the dead-letter topic itself, are refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

from consumer_patch import headers
from consumer_patch.envelope import decode_bytes, decode_headers
from consumer_patch.operator.reader import RawRecord, TopicReader
from consumer_patch.settings import Settings
from consumer_patch.topics import dead_letter_topic as dead_letter_topic_spec
from consumer_patch.topics import ensure_topics, missing_topics, source_topic
from tests.operator.conftest import EXPECTED_BY_TYPE, DeadLetterTopic
from tests.support.kafka_io import Outgoing, produce

TOTAL = sum(EXPECTED_BY_TYPE.values())


def _fresh_topic(dead_letter_topic: DeadLetterTopic) -> str:
    name = f"replay-target-{uuid.uuid4().hex[:8]}"
    bootstrap = dead_letter_topic.settings.kafka_bootstrap_servers
    asyncio.run(ensure_topics(bootstrap, [source_topic(name)]))
    return name


def _committed_records(settings: Settings, topic: str) -> list[RawRecord]:
    """Every committed record of ``topic`` now (read_committed, to the end)."""

    async def read() -> list[RawRecord]:
        async with TopicReader(settings, topic) as reader:
            partitions = await reader.partitions()
            bounds = await reader.bounds(partitions)
            return [
                record
                async for record in reader.read(
                    {n: first for n, (first, _last) in bounds.items()},
                    {n: last for n, (_first, last) in bounds.items()},
                )
            ]

    return asyncio.run(read())


def _by_dead_letter(records: list[RawRecord]) -> Counter[str]:
    return Counter(
        dict(record.headers)[headers.REPLAYED_FROM].decode() for record in records
    )


def _original(envelope: dict[str, Any]) -> tuple[object, ...]:
    return (
        decode_bytes(envelope["original_key"], envelope["original_key_encoding"]),
        decode_bytes(envelope["original_value"], envelope["original_value_encoding"]),
        tuple((name, raw or b"") for name, raw in decode_headers(envelope)),
    )


def test_dry_run_lists_the_selection_and_sends_nothing(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    target = _fresh_topic(dead_letter_topic)
    environment = dead_letter_topic.environment(KAFKA_REPLAY_ALLOWED_TOPICS=target)
    bootstrap = dead_letter_topic.settings.kafka_bootstrap_servers

    run = cli(
        environment,
        "replay",
        "--error-type",
        "ValidationError",
        "--to",
        target,
        "--dry-run",
        "--json",
    )

    report = run.json()
    assert run.code == 0, run.err
    assert report["dry_run"] is True
    assert {row["position"] for row in report["would_send"]} == (
        dead_letter_topic.positions("ValidationError")
    )
    assert report["sent"] == 0
    assert _committed_records(dead_letter_topic.settings, target) == []
    ledger = environment["KAFKA_REPLAY_LEDGER_TOPIC"]
    assert asyncio.run(missing_topics({"bootstrap_servers": bootstrap}, [ledger])) == [
        ledger
    ]


def test_replay_sends_each_original_once_with_its_bytes_even_when_run_twice(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    target = _fresh_topic(dead_letter_topic)
    environment = dead_letter_topic.environment(KAFKA_REPLAY_ALLOWED_TOPICS=target)
    selection = ("--error-type", "NotJSONError", "--error-type", "NotUTF8Error")

    first = cli(environment, "replay", *selection, "--to", target, "--json").json()
    second = cli(environment, "replay", *selection, "--to", target, "--json").json()
    replayed = _committed_records(dead_letter_topic.settings, target)

    letters = {
        f"{r.topic}-{r.partition}@{r.offset}": json.loads(r.value)
        for r in dead_letter_topic.records
        if json.loads(r.value)["error_type"] in {"NotJSONError", "NotUTF8Error"}
    }
    assert first["sent"] == len(letters) == 6
    assert second["sent"] == 0
    assert second["already_replayed"] == len(letters)
    assert _by_dead_letter(replayed) == Counter(dict.fromkeys(letters, 1))
    for record in replayed:
        record_headers = list(record.headers)
        pointer = dict(record_headers)[headers.REPLAYED_FROM].decode()
        envelope = letters[pointer]
        kept = tuple(
            (name, raw) for name, raw in record_headers if not headers.is_ours(name)
        )
        assert (record.key, record.value, kept) == _original(envelope)
        retry_count = dict(record_headers)[headers.RETRY_COUNT]
        assert retry_count == str(envelope["retry_count"]).encode()


def test_replay_without_target_goes_to_the_original_topic(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    environment = dead_letter_topic.environment()
    source = dead_letter_topic.settings.kafka_topic

    run = cli(environment, "replay", "--correlation-id", "val-0")
    replayed = [
        record
        for record in _committed_records(dead_letter_topic.settings, source)
        if headers.REPLAYED_FROM in dict(record.headers)
    ]

    assert run.code == 0, run.err
    assert "sent 1" in run.out
    assert len(replayed) == 1
    assert json.loads(replayed[0].value)["correlation_id"] == "val-0"


def test_replay_killed_midway_resumes_and_sends_each_record_once(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    target = _fresh_topic(dead_letter_topic)
    environment = dead_letter_topic.environment(KAFKA_REPLAY_ALLOWED_TOPICS=target)
    command = [sys.executable, "-m", "consumer_patch.cli.main"]
    arguments = ["replay", "--all", "--to", target, "--no-progress"]

    child = subprocess.Popen(
        [*command, *arguments, "--rate", "2"],
        env={**os.environ, **environment},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_committed_records(dead_letter_topic.settings, target)) < 3:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the replay never got going"
            time.sleep(0.2)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    before = len(_committed_records(dead_letter_topic.settings, target))

    resumed = cli(environment, *arguments, "--rate", "0", "--json")
    replayed = _committed_records(dead_letter_topic.settings, target)

    assert 3 <= before < TOTAL
    assert resumed.code == 0, resumed.err
    assert resumed.json()["sent"] == TOTAL - before
    assert resumed.json()["already_replayed"] == before
    assert len(replayed) == TOTAL
    assert set(_by_dead_letter(replayed).values()) == {1}


def test_replay_stopped_by_sigint_reports_what_it_sent_and_resumes(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    target = _fresh_topic(dead_letter_topic)
    environment = dead_letter_topic.environment(KAFKA_REPLAY_ALLOWED_TOPICS=target)
    command = [sys.executable, "-m", "consumer_patch.cli.main"]
    arguments = ["replay", "--all", "--to", target, "--no-progress", "--json"]

    child = subprocess.Popen(
        [*command, *arguments, "--rate", "4"],
        env={**os.environ, **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_committed_records(dead_letter_topic.settings, target)) < 2:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the replay never got going"
            time.sleep(0.2)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    stopped = json.loads(out)
    after_stop = _committed_records(dead_letter_topic.settings, target)

    resumed = cli(environment, *arguments, "--rate", "0")
    replayed = _committed_records(dead_letter_topic.settings, target)

    assert child.returncode == 130, err
    assert stopped["interrupted"] is True
    assert 2 <= stopped["sent"] < TOTAL
    assert stopped["sent"] == len(after_stop) == len(stopped["records"])
    assert resumed.code == 0, resumed.err
    assert resumed.json()["interrupted"] is False
    assert resumed.json()["already_replayed"] == stopped["sent"]
    assert resumed.json()["sent"] == TOTAL - stopped["sent"]
    assert len(replayed) == TOTAL
    assert set(_by_dead_letter(replayed).values()) == {1}


def test_replay_into_the_dead_letter_topic_or_an_unlisted_topic_is_refused(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    allowed = _fresh_topic(dead_letter_topic)
    unlisted = _fresh_topic(dead_letter_topic)
    environment = dead_letter_topic.environment(KAFKA_REPLAY_ALLOWED_TOPICS=allowed)
    dlq = dead_letter_topic.settings.kafka_dlq_topic

    into_dlq = cli(environment, "replay", "--all", "--to", dlq)
    into_unlisted = cli(environment, "replay", "--all", "--to", unlisted)
    into_original = cli(environment, "replay", "--all")
    missing = cli(
        dead_letter_topic.environment(KAFKA_REPLAY_ALLOWED_TOPICS="no-such-topic"),
        "replay",
        "--all",
        "--to",
        "no-such-topic",
    )
    dlq_listed = cli(
        dead_letter_topic.environment(KAFKA_REPLAY_ALLOWED_TOPICS=dlq),
        "replay",
        "--all",
        "--to",
        dlq,
    )

    assert into_dlq.code == 1
    assert "is the dead-letter topic itself" in into_dlq.err
    assert into_unlisted.code == 1
    assert "not in KAFKA_REPLAY_ALLOWED_TOPICS" in into_unlisted.err
    assert into_original.code == 1
    assert dead_letter_topic.settings.kafka_topic in into_original.err
    assert missing.code == 1
    assert "does not exist" in missing.err
    assert dlq_listed.code == 1
    assert "KAFKA_REPLAY_ALLOWED_TOPICS must not name the dead-letter" in dlq_listed.err
    assert _committed_records(dead_letter_topic.settings, unlisted) == []
    assert sum(1 for _ in _committed_records(dead_letter_topic.settings, dlq)) == TOTAL


def test_records_that_are_not_valid_envelopes_are_counted_and_never_replayed(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    bootstrap = dead_letter_topic.settings.kafka_bootstrap_servers
    dlq = f"odd-dlq-{uuid.uuid4().hex[:8]}"
    target = _fresh_topic(dead_letter_topic)
    good = dead_letter_topic.records[0]
    extra_field = {
        **json.loads(good.value),
        "dead_letter_id": str(uuid.uuid4()),
        "unexpected": True,
    }
    asyncio.run(ensure_topics(bootstrap, [dead_letter_topic_spec(dlq)]))
    asyncio.run(
        produce(
            bootstrap,
            dlq,
            [
                Outgoing(good.value, key=good.key, partition=0),
                Outgoing(b"garbage", key=b"g", partition=0),
                Outgoing(json.dumps(extra_field).encode(), key=b"x", partition=0),
            ],
        )
    )
    environment = dead_letter_topic.environment(
        KAFKA_DLQ_TOPIC=dlq, KAFKA_REPLAY_ALLOWED_TOPICS=target
    )

    stats = cli(environment, "stats", "--json").json()
    listed = cli(environment, "list", "--json").json()["dead_letters"]
    garbage = cli(environment, "show", "0:1", "--json").json()
    invalid = cli(environment, "show", "0:2", "--json").json()
    report = cli(environment, "replay", "--all", "--to", target, "--json").json()

    assert stats["total"] == 3
    assert stats["unreadable"] == 1
    assert {row["position"]: row["readable"] for row in listed} == {
        "0:0": True,
        "0:1": False,
        "0:2": True,
    }
    assert garbage["envelope"] is None
    assert "is not JSON" in garbage["problem"]
    assert invalid["envelope"] is None
    assert "not a valid envelope" in invalid["problem"]
    assert report["sent"] == 1
    assert report["unreadable_skipped"] == 2
    assert len(_committed_records(dead_letter_topic.settings, target)) == 1


def test_replay_rate_spaces_the_records_it_sends(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    target = _fresh_topic(dead_letter_topic)
    environment = dead_letter_topic.environment(KAFKA_REPLAY_ALLOWED_TOPICS=target)
    selection = ("--error-type", "NotJSONError", "--error-type", "ValidationError")

    run = cli(environment, "replay", *selection, "--to", target, "--rate", "4")
    replayed = _committed_records(dead_letter_topic.settings, target)

    # Seven records at 4 a second: the first goes at once, each next one a
    # quarter of a second later, so they span at least 1.5 s (the producer
    # stamps each record when it is sent).
    stamps = sorted(record.timestamp_ms for record in replayed)
    assert run.code == 0, run.err
    assert len(stamps) == 7
    assert (stamps[-1] - stamps[0]) / 1000 >= 1.5 * 0.95
