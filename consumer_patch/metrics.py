"""Prometheus metrics and the health state of a running consumer.

Metrics are kept in a registry per consumer, so several consumers (tests,
benchmarks) can live in one process. ``serve`` exposes ``/metrics`` and
``/health`` with a minimal asyncio HTTP server: no web framework needed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

BATCH_SECONDS_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.records_processed = Counter(
            "agent_dlq_records_processed_total",
            "Source records handled successfully (stored).",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "agent_dlq_dead_letters_total",
            "Records written to the dead-letter topic and acknowledged.",
            ["topic", "error_type", "error_category"],
            registry=self.registry,
        )
        self.dead_letter_publish_failures = Counter(
            "agent_dlq_dead_letter_publish_failures_total",
            "Attempts to write dead letters that the broker did not acknowledge.",
            ["reason"],
            registry=self.registry,
        )
        self.batches_left_to_rebalance = Counter(
            "agent_dlq_batches_left_to_rebalance_total",
            "Batches neither dead-lettered nor committed because a rebalance "
            "moved partitions while they were processed (they are redelivered).",
            registry=self.registry,
        )
        self.handler_calls = Counter(
            "agent_dlq_handler_calls_total",
            "Calls of the batch handler, including retries and isolation splits.",
            registry=self.registry,
        )
        self.retries = Counter(
            "agent_dlq_retries_total",
            "In-place retries after a transient or unknown failure.",
            ["error_category"],
            registry=self.registry,
        )
        self.batch_duration = Histogram(
            "agent_dlq_batch_duration_seconds",
            "Time from receiving a batch to committing its offsets.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.healthy = Gauge(
            "agent_dlq_consumer_healthy",
            "1 when the consumer is advancing normally, 0 while it holds position.",
            registry=self.registry,
        )
        self.last_commit = Gauge(
            "agent_dlq_last_commit_timestamp_seconds",
            "Unix time of the last successful offset commit.",
            registry=self.registry,
        )
        self.outage = Gauge(
            "agent_dlq_dependency_outage",
            "1 while the downstream store fails its health probe.",
            registry=self.registry,
        )
        self.healthy.set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class Health:
    """Problems the consumer currently has; healthy when there are none."""

    metrics: ConsumerMetrics
    problems: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    def report(self, component: str, problem: str) -> None:
        if self.problems.get(component) != problem:
            logger.warning("unhealthy component=%s problem=%s", component, problem)
        self.problems[component] = problem
        self.metrics.healthy.set(0)

    def clear(self, component: str) -> None:
        if self.problems.pop(component, None) is not None:
            logger.info("recovered component=%s", component)
        if not self.problems:
            self.metrics.healthy.set(1)

    @property
    def is_healthy(self) -> bool:
        return not self.problems

    def as_json(self) -> bytes:
        body = {
            "status": "ok" if self.is_healthy else "unhealthy",
            "problems": self.problems,
            "uptime_seconds": round(time.time() - self.started_at, 3),
        }
        return json.dumps(body).encode()


async def serve(
    metrics: ConsumerMetrics, health: Health, host: str, port: int
) -> asyncio.Server:
    """Serve ``GET /metrics`` and ``GET /health`` (503 while unhealthy)."""

    async def respond(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (
                b"\r\n",
                b"",
            ):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else ""
            if path == "/metrics":
                status, kind, body = "200 OK", CONTENT_TYPE_LATEST, metrics.exposition()
            elif path == "/health":
                status = "200 OK" if health.is_healthy else "503 Service Unavailable"
                kind, body = "application/json", health.as_json()
            else:
                status, kind, body = "404 Not Found", "text/plain", b"not found\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(respond, host, port)
