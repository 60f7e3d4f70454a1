"""A dead-letter topic with known contents, made by the real consumer.

Two waves of poison records go through the real consumer into a fresh
dead-letter topic; ``boundary`` lies between the two waves' ``failed_at``.
Tests read this topic and never write to it: replays go to topics of their
own and each test uses its own triage group and replay ledger.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from consumer_patch.cli.main import main
from consumer_patch.settings import Settings
from tests.conftest import Services
from tests.support.kafka_io import Outgoing, action_bytes, produce, read_topic
from tests.support.pipeline import (
    end_offsets,
    pipeline_settings,
    running_consumer,
    wait_until,
)

Identity = tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]


def not_json(n: int) -> Outgoing:
    return Outgoing(
        b"{not json %d" % n,
        key=b"k-nj-%d" % n,
        headers=[("correlation_id", b"nj-%d" % n), ("blob", b"\x00\xff\xfe%d" % n)],
    )


def invalid_action(n: int) -> Outgoing:
    value = json.dumps({"correlation_id": f"val-{n}", "agent_name": "planner"})
    return Outgoing(value.encode(), key=None, headers=[("n", b"%d" % n)])


def null_value(n: int) -> Outgoing:
    return Outgoing(
        None, key=b"null-%d" % n, headers=[("correlation_id", b"null-%d" % n)]
    )


def not_utf8(n: int) -> Outgoing:
    return Outgoing(b"\xff\xfe binary %d" % n, key=b"\xff\x00key%d" % n)


FIRST_WAVE = (
    [not_json(n) for n in range(3)]
    + [invalid_action(n) for n in range(2)]
    + [null_value(n) for n in range(2)]
)
SECOND_WAVE = [not_utf8(n) for n in range(2)] + [not_json(3), invalid_action(2)]
EXPECTED_BY_TYPE = Counter(
    {"NotJSONError": 4, "ValidationError": 3, "NullValueError": 2, "NotUTF8Error": 2}
)
SECOND_WAVE_BY_TYPE = Counter(
    {"NotUTF8Error": 2, "NotJSONError": 1, "ValidationError": 1}
)


def identity(item: Outgoing) -> Identity:
    return item.key, item.value, tuple(item.headers)


@dataclass(frozen=True)
class DeadLetterTopic:
    """The shared topic: settings, the poison sent and the envelopes written."""

    settings: Settings
    boundary: datetime
    records: list[ConsumerRecord[bytes, bytes]]

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        return [json.loads(record.value) for record in self.records]

    def positions(self, error_type: str | None = None) -> set[str]:
        return {
            f"{record.partition}:{record.offset}"
            for record in self.records
            if error_type is None
            or json.loads(record.value)["error_type"] == error_type
        }

    def environment(self, **overrides: str) -> dict[str, str]:
        """Variables that point the CLI at this topic, with fresh names of its own."""
        token = uuid.uuid4().hex[:8]
        values = {
            "KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers,
            "KAFKA_TOPIC": self.settings.kafka_topic,
            "KAFKA_DLQ_TOPIC": self.settings.kafka_dlq_topic,
            "KAFKA_GROUP_ID": self.settings.kafka_group_id,
            "KAFKA_DLQ_TRIAGE_GROUP": f"triage-{token}",
            "KAFKA_REPLAY_LEDGER_TOPIC": f"ledger-{token}",
            "KAFKA_REPLAY_ALLOWED_TOPICS": "",
        }
        values.update(overrides)
        return values


async def _dead_letter_count(bootstrap: str, topic: str) -> int:
    return sum((await end_offsets(bootstrap, topic)).values())


@pytest.fixture(scope="session")
async def dead_letter_topic(services: Services) -> DeadLetterTopic:
    token = uuid.uuid4().hex[:8]
    settings = await pipeline_settings(services, lambda prefix: f"op-{prefix}-{token}")
    bootstrap = services.bootstrap_servers
    first = [*FIRST_WAVE, *(Outgoing(action_bytes(f"ok-{n}")) for n in range(5))]
    second = [*SECOND_WAVE, *(Outgoing(action_bytes(f"ok-b{n}")) for n in range(3))]

    async with running_consumer(settings):
        await produce(bootstrap, settings.kafka_topic, first)
        await wait_until(
            lambda: _is(bootstrap, settings.kafka_dlq_topic, len(FIRST_WAVE)),
            what="the first wave of dead letters",
        )
        boundary = datetime.now(UTC)
        await asyncio.sleep(0.05)
        await produce(bootstrap, settings.kafka_topic, second)
        await wait_until(
            lambda: _is(
                bootstrap, settings.kafka_dlq_topic, len(FIRST_WAVE) + len(SECOND_WAVE)
            ),
            what="the second wave of dead letters",
        )

    records = await read_topic(
        bootstrap, settings.kafka_dlq_topic, len(FIRST_WAVE) + len(SECOND_WAVE)
    )
    return DeadLetterTopic(settings, boundary, records)


async def _is(bootstrap: str, topic: str, expected: int) -> bool:
    return await _dead_letter_count(bootstrap, topic) >= expected


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """Run ``agent-dlq`` in this process with the given environment."""

    def run(environment: dict[str, str], *arguments: str) -> Run:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            code = main(["--log-level", "WARNING", *arguments])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
