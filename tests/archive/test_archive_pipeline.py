"""Dead letters reach S3 through the real Connect sink, and read back intact.

Each test runs the real consumer on poison records, lets the bundled S3 sink
(registered from the shared configuration function, under a prefix of its
own) copy the dead-letter topic to s3proxy, and compares the objects with the
topic record by record before querying them with DuckDB as Athena would.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consumer_patch.archive.connect import ConnectClient
from consumer_patch.archive.demo_step import archived_dead_letters
from consumer_patch.archive.named_queries import named_queries
from consumer_patch.archive.query import ArchiveDatabase
from consumer_patch.archive.s3 import S3Location, SimpleS3Client
from consumer_patch.connector import ArchiveLayout
from consumer_patch.settings import Settings
from consumer_patch.stack.connect import local_connector_config
from tests.conftest import ArchiveServices, Services
from tests.support.kafka_io import Outgoing, action_bytes, produce, read_topic
from tests.support.pipeline import pipeline_settings, running_consumer

# The local worker commits (and the sink stores) every 5 s; a dead letter
# that is not in S3 well within this is lost as far as a reader can tell.
ARCHIVE_WAIT_SECONDS = 45.0
RESTART_WAIT_SECONDS = 120.0


class Archive:
    """One test's slice of the archive: its own DLQ, connector and prefix."""

    def __init__(
        self,
        services: Services,
        archive: ArchiveServices,
        settings: Settings,
        name: str,
    ):
        self.services = services
        self.settings = settings
        self.layout = ArchiveLayout(prefix=name, topic=settings.kafka_dlq_topic)
        self.connector = name
        self.client = ConnectClient(archive.connect_url)
        self.location_environment = archive.s3_environment
        self.location = S3Location.from_environment(archive.s3_environment)
        self.s3 = SimpleS3Client(self.location)
        self.control = archive.connect_control
        self.config = local_connector_config(
            archive.s3_environment, self.layout, self.connector
        )

    def register(self) -> None:
        self.client.put_connector(self.connector, self.config)
        self.client.wait_until_running(self.connector, 60)

    def lines(self) -> list[bytes]:
        """Every line of every archived object, as stored."""
        found = []
        for key in self.keys():
            found += gzip.decompress(self.s3.get_object(key)).splitlines()
        return found

    def keys(self) -> list[str]:
        # s3proxy lists an upload in progress as "<key>-<uuid>"; skip those.
        listed = self.s3.list_objects(self.layout.table_prefix)
        return [item.key for item in listed if item.key.endswith(".gz")]

    async def wait_for_lines(self, wanted: Counter[bytes], wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        while True:
            have = Counter(self.lines())
            if not wanted - have:
                return
            if time.monotonic() > deadline:
                missing = sum((wanted - have).values())
                raise AssertionError(
                    f"{missing} dead letters not archived after {wait_seconds}s"
                )
            await asyncio.sleep(0.5)

    def database(self) -> ArchiveDatabase:
        return ArchiveDatabase(self.location, self.layout)


@pytest.fixture
async def archive(
    services: Services,
    archive_services: ArchiveServices,
    unique: Callable[[str], str],
) -> AsyncIterator[Archive]:
    settings = await pipeline_settings(services, unique)
    slice_ = Archive(services, archive_services, settings, unique("archive-test"))
    await asyncio.to_thread(slice_.register)
    yield slice_
    await asyncio.to_thread(slice_.client.delete_connector, slice_.connector)


def _poison(token: str, count: int) -> list[Outgoing]:
    """Schema-invalid actions (with correlation ids) and undecodable bytes."""
    records = [
        Outgoing(
            action_bytes(f"{token}-{number}", duration_ms=-1),
            key=f"agent-{number}".encode(),
        )
        for number in range(count)
    ]
    records.append(
        Outgoing(b"not json", key=b"raw", headers=[("correlation_id", token.encode())])
    )
    return records


async def _dead_letter(
    archive: Archive, records: list[Outgoing], dead: int, already: int = 0
) -> list[Any]:
    """Run the consumer on ``records``; return every DLQ record so far."""
    settings = archive.settings
    await produce(settings.kafka_bootstrap_servers, settings.kafka_topic, records)
    expected = already + dead
    async with running_consumer(settings):
        letters = await read_topic(
            settings.kafka_bootstrap_servers,
            settings.kafka_dlq_topic,
            expected=expected,
            wait_seconds=60,
        )
    assert len(letters) == expected, "the consumer did not dead-letter every poison"
    return letters


def _day(record: Any) -> str:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC).date().isoformat()


async def test_poison_records_are_archived_byte_for_byte_under_their_day(
    archive: Archive, unique: Callable[[str], str]
) -> None:
    token = unique("corr")
    poison = _poison(token, 5)
    good = Outgoing(action_bytes(f"{token}-good"), key=b"good")

    started = time.monotonic()
    # The valid record is stored, not dead-lettered.
    letters = await _dead_letter(archive, [*poison, good], dead=len(poison))
    await archive.wait_for_lines(
        Counter(letter.value for letter in letters), ARCHIVE_WAIT_SECONDS
    )
    latency = time.monotonic() - started

    days = {_day(letter) for letter in letters}
    prefixes = {f"{archive.layout.table_prefix}dt={day}/" for day in days}
    keys = await asyncio.to_thread(archive.keys)
    assert keys, "no archive objects"
    assert all(any(key.startswith(p) for p in prefixes) for key in keys), keys
    assert sorted(archive.lines()) == sorted(letter.value for letter in letters)
    assert latency < ARCHIVE_WAIT_SECONDS

    state = archive.client.status(archive.connector)
    assert state is not None
    assert state.is_running, state.summary


async def test_query_by_correlation_id_finds_dead_letters_with_original_value(
    archive: Archive, unique: Callable[[str], str]
) -> None:
    token = unique("corr")
    poison = _poison(token, 3)
    letters = await _dead_letter(archive, poison, dead=len(poison))
    await archive.wait_for_lines(
        Counter(letter.value for letter in letters), ARCHIVE_WAIT_SECONDS
    )
    (by_correlation,) = [
        query
        for query in named_queries()
        if query.name == "dead-letters-by-correlation-id"
    ]

    with archive.database() as database:
        named = database.run_named(by_correlation, [f"{token}-1"]).as_dicts()
        rows = database.execute(
            "SELECT correlation_id, original_value, original_value_encoding, "
            "original_key, error_category, dt FROM agent_actions_dlq "
            "WHERE correlation_id = ?",
            [f"{token}-1"],
        ).as_dicts()
        raw = database.execute(
            "SELECT original_value FROM agent_actions_dlq WHERE correlation_id = ?",
            [token],
        ).rows

    assert len(named) == 1
    assert named[0]["error_category"] == "permanent"
    assert len(rows) == 1
    assert rows[0]["original_value"].encode() == poison[1].value
    assert rows[0]["original_value_encoding"] == "utf8"
    assert rows[0]["original_key"] == "agent-1"
    assert rows[0]["dt"] == datetime.now(UTC).date().isoformat()
    # The undecodable record found by its correlation header, bytes intact.
    assert raw == [("not json",)]


async def test_demo_step_returns_the_archived_dead_letters_of_a_run(
    archive: Archive, unique: Callable[[str], str]
) -> None:
    since = datetime.now(UTC)
    letters = await _dead_letter(archive, _poison(unique("corr"), 2), dead=3)

    found = await asyncio.to_thread(
        archived_dead_letters,
        archive.location_environment,
        ARCHIVE_WAIT_SECONDS,
        failed_since=since,
        original_topic=archive.settings.kafka_topic,
        expected=3,
        layout=archive.layout,
    )

    assert sorted(row["dead_letter_id"] for row in found) == sorted(
        json.loads(letter.value)["dead_letter_id"] for letter in letters
    )
    assert all(row["dt"] == since.date().isoformat() for row in found)


async def test_named_queries_count_each_dead_letter_once_despite_duplicates(
    archive: Archive, unique: Callable[[str], str]
) -> None:
    token = unique("corr")
    letters = await _dead_letter(archive, _poison(token, 4), dead=5)
    # The same envelope published twice (a dead-letter write retried after a
    # crash) carries the same dead_letter_id.
    first = letters[0]
    await produce(
        archive.settings.kafka_bootstrap_servers,
        archive.settings.kafka_dlq_topic,
        [Outgoing(first.value, key=first.key)],
    )
    wanted = Counter(letter.value for letter in letters)
    wanted[first.value] += 1
    await archive.wait_for_lines(wanted, ARCHIVE_WAIT_SECONDS)
    queries = {query.name: query for query in named_queries()}
    today = datetime.now(UTC).date().isoformat()

    with archive.database() as database:
        raw = database.execute("SELECT count(*) FROM agent_actions_dlq").rows
        unique_rows = database.execute(
            "SELECT count(*) FROM agent_actions_dlq_unique"
        ).rows
        by_type = database.run_named(
            queries["dead-letters-by-error-type"], [today, today]
        ).as_dicts()
        agents = database.run_named(
            queries["top-failing-agents"], [today, today]
        ).as_dicts()

    assert raw == [(6,)]
    assert unique_rows == [(5,)]
    counts = {row["error_type"]: row["dead_letters"] for row in by_type}
    assert counts == {"ValidationError": 4, "NotJSONError": 1}, counts
    # "not json" has no agent_name to read, like the example in Athena.
    assert {row["agent_name"]: row["dead_letters"] for row in agents} == {
        "planner": 4,
        None: 1,
    }


async def test_restarting_the_connect_worker_loses_nothing(
    archive: Archive, unique: Callable[[str], str]
) -> None:
    if archive.control is None:
        pytest.skip("KAFKA_CONNECT_URL names a worker this suite does not run")
    control = archive.control
    token = unique("corr")

    before = await _dead_letter(archive, _poison(token, 3), dead=4)
    await archive.wait_for_lines(
        Counter(letter.value for letter in before), ARCHIVE_WAIT_SECONDS
    )
    # A graceful stop, dead letters written while the worker is down, then a
    # crash (SIGKILL) right after the worker took them back: neither may
    # lose a record, and readers must not count a redelivered one twice.
    await asyncio.to_thread(control.stop)
    everything = await _dead_letter(
        archive, _poison(f"{token}-down", 3), dead=4, already=len(before)
    )
    await asyncio.to_thread(control.start)
    await asyncio.to_thread(archive.client.wait_until_running, archive.connector, 60)
    pid = control.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(_wait_dead, control)
    await asyncio.to_thread(control.start)
    await asyncio.to_thread(archive.client.wait_until_running, archive.connector, 60)

    await archive.wait_for_lines(
        Counter(letter.value for letter in everything), RESTART_WAIT_SECONDS
    )
    ids = {json.loads(letter.value)["dead_letter_id"] for letter in everything}
    now = datetime.now(UTC).date()
    days = [
        (now - timedelta(days=1)).isoformat(),
        (now + timedelta(days=1)).isoformat(),
    ]
    by_type = next(q for q in named_queries() if q.name == "dead-letters-by-error-type")
    with archive.database() as database:
        # Every line, as Athena reads it: redelivered copies included.
        archived = database.execute(
            "SELECT dead_letter_id, count(*) FROM agent_actions_dlq GROUP BY 1"
        ).rows
        counted = database.run_named(by_type, days).as_dicts()

    assert {row[0] for row in archived} == ids, "a dead letter was lost"
    # What readers count: the named query counts each dead letter once.
    assert sum(row["dead_letters"] for row in counted) == len(ids)
    state = archive.client.status(archive.connector)
    assert state is not None
    assert state.is_running, state.summary


def _wait_dead(control: Any) -> None:
    deadline = time.monotonic() + 30
    while control.status().state == "running":
        if time.monotonic() > deadline:
            raise AssertionError("the Connect worker survived SIGKILL")
        time.sleep(0.1)
