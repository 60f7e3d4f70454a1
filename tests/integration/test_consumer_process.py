"""`agent-dlq consume` as a process: clean exit on SIGTERM, nothing lost on SIGKILL.

Runs the real command against the local Kafka and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from consumer_patch.settings import Settings
from tests.conftest import Services
from tests.support.kafka_io import (
    Outgoing,
    action_bytes,
    produce,
    read_topic,
    set_topic_config,
)
from tests.support.pipeline import (
    committed_offsets,
    pipeline_settings,
    stored_rows,
    wait_until,
    wait_until_drained,
)

# Small batches and a few thousand records per round keep a consumer busy
# for a second or more, long enough for a kill to land mid-stream.
RECORDS_PER_ROUND = 3000
CHAOS_BATCH_SIZE = "20"


def _environment(settings: Settings, **extra: str) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("KAFKA_")
    }
    environment.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "KAFKA_TOPIC": settings.kafka_topic,
            "KAFKA_DLQ_TOPIC": settings.kafka_dlq_topic,
            "KAFKA_GROUP_ID": settings.kafka_group_id,
            "KAFKA_BATCH_SIZE": "50",
            "KAFKA_BATCH_TIMEOUT_MS": "200",
            "KAFKA_RETRY_DELAY_MS": "20",
            "KAFKA_RETRY_MAX_DELAY_MS": "200",
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "POSTGRES_DSN": settings.require_postgres_dsn(),
            "METRICS_PORT": "0",
        }
    )
    environment.update(extra)
    return environment


def _start(environment: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "consumer_patch.cli.main",
            "--log-level",
            "WARNING",
            "consume",
        ],
        env=environment,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _records(count: int, start: int, seed: int) -> list[Outgoing]:
    rng = random.Random(seed)
    records = []
    for number in range(start, start + count):
        roll = rng.random()
        if roll < 0.02:
            value: bytes | None = b"{broken %d" % number
        elif roll < 0.04:
            value = action_bytes(f"db-{number}", agent_name="nul\u0000")
        else:
            value = action_bytes(f"ok-{number}")
        records.append(Outgoing(value, key=b"k%d" % (number % 11)))
    return records


async def test_sigterm_finishes_the_batch_commits_and_exits_zero(
    services: Services, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = await pipeline_settings(services, unique)
    produced = _records(RECORDS_PER_ROUND, 0, seed=3)
    await produce(services.bootstrap_servers, settings.kafka_topic, produced)
    process = _start(
        _environment(settings, KAFKA_BATCH_SIZE=CHAOS_BATCH_SIZE), tmp_path
    )
    try:
        await wait_until(
            lambda: _progressed(services, settings, 0),
            what="the consumer to commit its first batch",
        )
        process.send_signal(signal.SIGTERM)  # mid-stream, work left
        code = await asyncio.to_thread(process.wait, 60)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read().decode() if process.stderr else ""

    committed = {
        tp.partition: offset
        for tp, offset in (
            await committed_offsets(services.bootstrap_servers, settings.kafka_group_id)
        ).items()
    }
    rows = await stored_rows(services.postgres_dsn, settings.kafka_topic)
    dead = await read_topic(
        services.bootstrap_servers,
        settings.kafka_dlq_topic,
        len(produced),  # never reached: read all there is for a few seconds
        wait_seconds=3,
    )
    handled: dict[int, set[int]] = {}
    for row in rows:
        handled.setdefault(row["source_partition"], set()).add(row["source_offset"])
    for letter in [json.loads(record.value) for record in dead]:
        partition = letter["original_partition"]
        handled.setdefault(partition, set()).add(letter["original_offset"])

    assert code == 0, stderr[-2000:]
    assert sum(committed.values()) < len(produced), "the signal came after the drain"
    # The batch in flight was finished and committed: everything handled is
    # below the committed offset, and everything below it was handled.
    for partition in set(handled) | set(committed):
        expected = set(range(committed.get(partition, 0)))
        assert handled.get(partition, set()) == expected, partition


async def test_missing_topic_is_a_clear_error_not_a_traceback(
    services: Services, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = await pipeline_settings(services, unique)
    environment = _environment(settings, KAFKA_DLQ_TOPIC=unique("no-such-dlq"))

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "consumer_patch.cli.main", "consume"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "do not exist" in result.stderr
    assert "Traceback" not in result.stderr


async def _committed_total(services: Services, settings: Settings) -> int:
    committed = await committed_offsets(
        services.bootstrap_servers, settings.kafka_group_id
    )
    return sum(
        offset for tp, offset in committed.items() if tp.topic == settings.kafka_topic
    )


async def _progressed(services: Services, settings: Settings, before: int) -> bool:
    return await _committed_total(services, settings) > before


@pytest.mark.parametrize("transactional", [True, False], ids=["transactional", "plain"])
async def test_sigkill_at_random_moments_loses_nothing(
    services: Services,
    unique: Callable[[str], str],
    tmp_path: Path,
    transactional: bool,
) -> None:
    settings = await pipeline_settings(services, unique)
    extra = {"KAFKA_DLQ_TRANSACTIONAL": str(transactional).lower()}
    if transactional:
        extra["KAFKA_TRANSACTIONAL_ID"] = unique("tx")
    environment = _environment(settings, KAFKA_BATCH_SIZE=CHAOS_BATCH_SIZE, **extra)
    rng = random.Random(11)
    produced: list[Outgoing] = []
    killed_mid_stream = 0

    for round_number in range(4):
        batch = _records(RECORDS_PER_ROUND, len(produced), seed=round_number)
        produced.extend(batch)
        await produce(services.bootstrap_servers, settings.kafka_topic, batch)
        before = await _committed_total(services, settings)
        process = _start(environment, tmp_path)
        # Kill only once this process has committed something, at a random
        # moment after that, so the kill lands while work is in flight
        # rather than before the group join or after the drain.
        await wait_until(
            lambda before=before: _progressed(services, settings, before),
            wait_seconds=60,
            what="the consumer to commit its first batch",
        )
        await asyncio.sleep(rng.uniform(0.0, 0.4))
        process.kill()
        await asyncio.to_thread(process.wait, 30)
        if await _committed_total(services, settings) < len(produced):
            killed_mid_stream += 1

    assert killed_mid_stream >= 2, (
        f"only {killed_mid_stream} of 4 kills hit a consumer with work left"
    )
    final = _start(environment, tmp_path)
    try:
        await wait_until_drained(
            services,
            settings,
            wait_seconds=120,
            what="the restarted consumer to drain the topic",
        )
        final.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(final.wait, 60) == 0
    finally:
        if final.poll() is None:
            final.kill()

    valid = {
        json.loads(item.value)["correlation_id"] for item in produced if _is_valid(item)
    }
    poison = [item.value for item in produced if not _is_valid(item)]
    rows = await stored_rows(services.postgres_dsn, settings.kafka_topic)
    dead = await read_topic(
        services.bootstrap_servers, settings.kafka_dlq_topic, len(poison)
    )
    letters = [json.loads(record.value) for record in dead]
    positions = Counter(
        (e["original_partition"], e["original_offset"]) for e in letters
    )

    assert Counter(row["correlation_id"] for row in rows) == Counter(valid)
    assert sorted({e["original_value"].encode() for e in letters}) == sorted(
        set(poison)
    )
    assert len(positions) == len(poison)
    if transactional:
        assert max(positions.values()) == 1, "a dead letter was duplicated"


def _is_valid(item: Outgoing) -> bool:
    assert item.value is not None
    return item.value.startswith(b"{") and b"ok-" in item.value


async def test_unreachable_postgres_names_the_setting_without_the_password(
    services: Services, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = await pipeline_settings(services, unique)
    environment = _environment(
        settings, POSTGRES_DSN="postgresql://app:s3cr3t@127.0.0.1:1/agents"
    )

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "consumer_patch.cli.main", "consume"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "POSTGRES_DSN: cannot connect to PostgreSQL" in result.stderr
    assert "s3cr3t" not in result.stderr
    assert "Traceback" not in result.stderr


async def test_metrics_and_health_endpoints_of_the_running_command(
    services: Services, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = await pipeline_settings(services, unique)
    produced = _records(300, 0, seed=5)
    poison = [item for item in produced if not _is_valid(item)]
    await produce(services.bootstrap_servers, settings.kafka_topic, produced)
    port = _free_port()
    process = _start(_environment(settings, METRICS_PORT=str(port)), tmp_path)
    try:
        await wait_until_drained(
            services, settings, what="the consumer to drain the topic"
        )
        healthy = await _get(port, "/health")
        metrics = (await _get(port, "/metrics"))[1]

        # The dead-letter topic stops taking envelopes: /health turns 503 and
        # names the cause, and comes back by itself once the topic is fixed.
        dlq = settings.kafka_dlq_topic
        await set_topic_config(
            services.bootstrap_servers, dlq, "max.message.bytes", "200"
        )
        await produce(
            services.bootstrap_servers, settings.kafka_topic, [Outgoing(b"{broken")]
        )
        await wait_until(
            lambda: _status_is(port, 503), wait_seconds=30, what="/health to be 503"
        )
        unhealthy = await _get(port, "/health")
        await set_topic_config(
            services.bootstrap_servers, dlq, "max.message.bytes", "8388608"
        )
        await wait_until(
            lambda: _status_is(port, 200), wait_seconds=60, what="/health to be 200"
        )
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 60) == 0
    finally:
        if process.poll() is None:
            process.kill()

    assert healthy[0] == 200
    assert _sample(metrics, "agent_dlq_records_processed_total") == len(produced) - len(
        poison
    )
    assert _sample(metrics, "agent_dlq_dead_letters_total") == len(poison)
    assert unhealthy[0] == 503
    assert "dead_letter_publish" in unhealthy[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _get(port: int, path: str) -> tuple[int, str]:
    def fetch() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}{path}", timeout=5
            ) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    return await asyncio.to_thread(fetch)


async def _status_is(port: int, status: int) -> bool:
    try:
        return (await _get(port, "/health"))[0] == status
    except OSError:
        return False  # not listening yet


def _sample(exposition: str, name: str) -> float:
    """Sum of a metric's samples over all its labels."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
    )
