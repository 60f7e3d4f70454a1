"""watch exports rate and depth per error type and alerts over the threshold.

The webhook is a real HTTP server on 127.0.0.1; the dead letters are the
shared fixture's, written by the real consumer.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from prometheus_client import start_http_server

from consumer_patch.operator.watch import (
    DeadLetterMonitor,
    Notifier,
    Snapshot,
    exporter_registry,
)
from consumer_patch.settings import load_settings
from tests.operator.conftest import EXPECTED_BY_TYPE, DeadLetterTopic

TOTAL = sum(EXPECTED_BY_TYPE.values())


class Webhook:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        received = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


def test_crossing_the_threshold_fires_the_webhook_and_exits_non_zero(
    dead_letter_topic: DeadLetterTopic, cli, webhook: Webhook
) -> None:
    environment = dead_letter_topic.environment(KAFKA_DLQ_ALERT_WEBHOOK_URL=webhook.url)

    over = cli(environment, "watch", "--once", "--threshold", str(TOTAL - 1), "--json")

    assert over.code == 3, over.err
    assert len(webhook.calls) == 1
    call = webhook.calls[0]
    assert call["status"] == "firing"
    assert call["last_hour"] == TOTAL
    assert call["last_hour_by_error_type"] == dict(EXPECTED_BY_TYPE)
    assert call["threshold_per_hour"] == TOTAL - 1
    assert json.loads(over.out)["breached"] is True


def test_at_the_threshold_nothing_fires(
    dead_letter_topic: DeadLetterTopic, cli, webhook: Webhook
) -> None:
    environment = dead_letter_topic.environment()

    at = cli(
        environment,
        "watch",
        "--once",
        "--threshold",
        str(TOTAL),
        "--webhook",
        webhook.url,
    )

    assert at.code == 0, at.err
    assert webhook.calls == []
    assert f"last hour {TOTAL}" in at.out


def test_depth_threshold_fires_until_dead_letters_are_acknowledged(
    dead_letter_topic: DeadLetterTopic, cli, webhook: Webhook
) -> None:
    environment = dead_letter_topic.environment()
    watch = ("watch", "--once", "--max-depth", "5", "--webhook", webhook.url)

    before = cli(environment, *watch)
    cli(environment, "ack", "--all")
    after = cli(environment, *watch)

    assert before.code == 3
    assert after.code == 0
    assert [call["status"] for call in webhook.calls] == ["firing"]
    assert webhook.calls[0]["depth"] == TOTAL


async def test_exporter_serves_rate_and_depth_per_error_type(
    dead_letter_topic: DeadLetterTopic,
) -> None:
    settings = load_settings(
        **{
            name.lower(): value
            for name, value in dead_letter_topic.environment().items()
        }
    )
    monitor = DeadLetterMonitor(settings)
    await monitor.start()
    server, _thread = start_http_server(0, "127.0.0.1", exporter_registry(monitor))
    try:
        snapshot = await monitor.scan()
        again = await monitor.scan()
        port = server.server_address[1]
        text = await asyncio.to_thread(_scrape, f"http://127.0.0.1:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
        await monitor.stop()

    samples = _samples(text)
    dlq = settings.kafka_dlq_topic
    for error_type, count in EXPECTED_BY_TYPE.items():
        labels = f'dlq_topic="{dlq}",error_type="{error_type}"'
        assert samples[f"agent_dlq_dead_letters_last_hour{{{labels}}}"] == count
        assert samples[f"agent_dlq_depth{{{labels}}}"] == count
    assert samples[f'agent_dlq_watch_breached{{dlq_topic="{dlq}"}}'] == 0
    assert snapshot.last_hour == again.last_hour == TOTAL
    assert again.depth == TOTAL
    assert again.source_lag is not None


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return str(reply.read().decode())


def _samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_long_running_watch_exits_on_breach_when_asked(
    dead_letter_topic: DeadLetterTopic, cli
) -> None:
    environment = dead_letter_topic.environment()

    run = cli(
        environment,
        "watch",
        "--threshold",
        "1",
        "--interval",
        "1",
        "--port",
        "0",
        "--exit-on-breach",
        "--json",
    )

    assert run.code == 3, run.err
    assert json.loads(run.out.splitlines()[-1])["breached"] is True


async def test_webhook_hears_firing_once_then_resolved(webhook: Webhook) -> None:
    monitor = DeadLetterMonitor(load_settings(kafka_dlq_topic="dlq-under-test"))
    notifier = Notifier(monitor, webhook.url)

    for last_hour in (150, 160, 90, 80):
        await notifier.update(_snapshot(last_hour))

    assert [call["status"] for call in webhook.calls] == ["firing", "resolved"]
    assert [call["last_hour"] for call in webhook.calls] == [150, 90]


async def test_a_failing_webhook_is_counted_and_retried() -> None:
    monitor = DeadLetterMonitor(load_settings(kafka_dlq_topic="dlq-under-test"))
    notifier = Notifier(monitor, "http://127.0.0.1:9/unreachable")

    await notifier.update(_snapshot(150))
    await notifier.update(_snapshot(150))

    assert monitor.webhook_failures == 2


def _snapshot(last_hour: int) -> Snapshot:
    return Snapshot(
        at=datetime.now(UTC),
        dlq_topic="dlq-under-test",
        last_hour_by_type={"NotJSONError": last_hour},
        depth_by_type={},
        oldest_unhandled=None,
        source_lag=None,
        threshold_per_hour=100,
        max_depth=None,
    )
