"""Watch the dead-letter topic: rate and depth per error type, exported and alerted.

A ``DeadLetterMonitor`` keeps one reader on the dead-letter topic and, on
each scan, reads what arrived since the last one, re-reads the triage
group's committed offsets and the consumer group's lag, and publishes a
``Snapshot``. The snapshot backs the Prometheus exporter (one atomic swap,
so a scrape never sees half a scan) and the threshold check: more than
``KAFKA_DLQ_ALERT_RATE_PER_HOUR`` dead letters in the last hour, or a depth
over ``KAFKA_DLQ_ALERT_DEPTH``. A webhook is called once when the threshold
is crossed ("firing") and once when it is no longer ("resolved").

Note:
    The monitor holds one small entry per dead letter that is either not yet
    handled (after the triage offsets) or less than an hour old. Known
    limitation: a backlog of millions of unhandled dead letters costs
    memory in proportion (about a hundred bytes each).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from consumer_patch.operator.errors import OperatorError
from consumer_patch.operator.reader import (
    SEEK_MARGIN,
    DeadLetterReader,
    client_options,
    kafka_errors,
)
from consumer_patch.operator.stats import RATE_WINDOW, moment_of
from consumer_patch.settings import Settings
from consumer_patch.topics import partitions_of

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Seen:
    failed_at: float  # Unix seconds
    error_type: str


@dataclass(frozen=True)
class Snapshot:
    """The state of the dead-letter topic at one scan."""

    at: datetime
    dlq_topic: str
    last_hour_by_type: dict[str, int]
    depth_by_type: dict[str, int]
    oldest_unhandled: float | None
    source_lag: int | None
    threshold_per_hour: int
    max_depth: int | None

    @property
    def last_hour(self) -> int:
        return sum(self.last_hour_by_type.values())

    @property
    def depth(self) -> int:
        return sum(self.depth_by_type.values())

    @property
    def breached(self) -> bool:
        return self.last_hour > self.threshold_per_hour or (
            self.max_depth is not None and self.depth > self.max_depth
        )

    def reasons(self) -> list[str]:
        found = []
        if self.last_hour > self.threshold_per_hour:
            found.append(
                f"{self.last_hour} dead letters in the last hour "
                f"(threshold {self.threshold_per_hour})"
            )
        if self.max_depth is not None and self.depth > self.max_depth:
            found.append(f"depth {self.depth} (threshold {self.max_depth})")
        return found

    def as_json(self) -> dict[str, Any]:
        oldest = self.oldest_unhandled
        return {
            "at": self.at.isoformat(timespec="milliseconds"),
            "dlq_topic": self.dlq_topic,
            "last_hour": self.last_hour,
            "last_hour_by_error_type": dict(sorted(self.last_hour_by_type.items())),
            "depth": self.depth,
            "depth_by_error_type": dict(sorted(self.depth_by_type.items())),
            "oldest_unhandled": None
            if oldest is None
            else datetime.fromtimestamp(oldest, UTC).isoformat(timespec="seconds"),
            "source_lag": self.source_lag,
            "threshold_per_hour": self.threshold_per_hour,
            "max_depth": self.max_depth,
            "breached": self.breached,
            "reasons": self.reasons(),
        }


@dataclass
class _PartitionState:
    next_offset: int
    # Entries are complete from here on (the committed offset last seen).
    complete_from: int
    seen: dict[int, Seen] = field(default_factory=dict)


class DeadLetterMonitor:
    """Scans the dead-letter topic and keeps the latest ``Snapshot``."""

    def __init__(
        self,
        settings: Settings,
        *,
        threshold_per_hour: int | None = None,
        max_depth: int | None = None,
    ):
        self.settings = settings
        self.threshold_per_hour = (
            threshold_per_hour or settings.kafka_dlq_alert_rate_per_hour
        )
        self.max_depth = (
            max_depth if max_depth is not None else settings.kafka_dlq_alert_depth
        )
        self._reader = DeadLetterReader(settings)
        self._admin: AIOKafkaAdminClient | None = None
        self._partitions: dict[int, _PartitionState] = {}
        self.snapshot: Snapshot | None = None
        self.scans = 0
        self.webhook_failures = 0

    async def start(self) -> None:
        await self._reader.__aenter__()
        admin = AIOKafkaAdminClient(**client_options(self.settings))
        try:
            async with kafka_errors("connecting the admin client"):
                await admin.start()
        except BaseException:
            await admin.close()
            await self._reader.__aexit__(None, None, None)
            raise
        self._admin = admin

    async def stop(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()
        await self._reader.__aexit__(None, None, None)

    async def scan(self, now: datetime | None = None) -> Snapshot:
        """Catch up with the topic and the triage offsets; return the new snapshot."""
        moment = now or datetime.now(UTC)
        reader = self._reader
        partitions = await reader.partitions()
        bounds = await reader.bounds(partitions)
        committed = await reader.committed(partitions)
        hour_ago = moment - RATE_WINDOW
        new = [number for number in partitions if number not in self._partitions]
        by_time = await reader.offsets_at(new, hour_ago - SEEK_MARGIN) if new else {}

        starts: dict[int, int] = {}
        for number in partitions:
            first, last = bounds[number]
            handled = max(first, committed[number] or 0)
            state = self._partitions.get(number)
            if state is None:
                recent = by_time.get(number)
                recent_start = last if recent is None else recent
                start = max(first, min(handled, recent_start))
                state = _PartitionState(start, handled)
                self._partitions[number] = state
                starts[number] = start
            elif handled < state.complete_from:
                # The triage offsets moved back: read that stretch again.
                starts[number] = handled
                state.complete_from = handled
            else:
                starts[number] = state.next_offset
                state.complete_from = handled

        ends = {number: bounds[number][1] for number in partitions}
        async for letter in reader.dead_letters(starts, ends):
            state = self._partitions[letter.partition]
            state.seen[letter.offset] = Seen(
                moment_of(letter).timestamp(), letter.error_type
            )
        for number in partitions:
            state = self._partitions[number]
            state.next_offset = max(state.next_offset, ends[number])
            _prune(state, bounds[number][0], hour_ago.timestamp())

        self.snapshot = self._summarize(moment, await self._source_lag())
        self.scans += 1
        return self.snapshot

    def _summarize(self, moment: datetime, lag: int | None) -> Snapshot:
        hour_ago = (moment - RATE_WINDOW).timestamp()
        until = moment.timestamp()
        last_hour: Counter[str] = Counter()
        depth: Counter[str] = Counter()
        oldest: float | None = None
        for state in self._partitions.values():
            for offset, seen in state.seen.items():
                if hour_ago < seen.failed_at <= until:
                    last_hour[seen.error_type] += 1
                if offset >= state.complete_from:
                    depth[seen.error_type] += 1
                    if oldest is None or seen.failed_at < oldest:
                        oldest = seen.failed_at
        return Snapshot(
            at=moment,
            dlq_topic=self.settings.kafka_dlq_topic,
            last_hour_by_type=dict(last_hour),
            depth_by_type=dict(depth),
            oldest_unhandled=oldest,
            source_lag=lag,
            threshold_per_hour=self.threshold_per_hour,
            max_depth=self.max_depth,
        )

    async def _source_lag(self) -> int | None:
        """Records of KAFKA_TOPIC that KAFKA_GROUP_ID has not committed yet."""
        admin = self._admin
        if admin is None:
            return None
        settings = self.settings
        try:
            numbers = [
                TopicPartition(settings.kafka_topic, number)
                for number in await partitions_of(
                    client_options(settings), settings.kafka_topic
                )
            ]
            if not numbers:
                return None
            ends = await self._reader.consumer.end_offsets(numbers)
            firsts = await self._reader.consumer.beginning_offsets(numbers)
            offsets = await admin.list_consumer_group_offsets(
                settings.kafka_group_id, partitions=numbers
            )
        except Exception as error:
            logger.warning("could not read the consumer group's lag: %r", error)
            return None
        lag = 0
        for tp in numbers:
            meta = offsets.get(tp)
            committed = meta.offset if meta is not None and meta.offset >= 0 else None
            lag += max(ends[tp] - (firsts[tp] if committed is None else committed), 0)
        return lag


def _prune(state: _PartitionState, first_retained: int, hour_ago: float) -> None:
    for offset in [
        offset
        for offset, seen in state.seen.items()
        if offset < first_retained
        or (offset < state.complete_from and seen.failed_at <= hour_ago)
    ]:
        del state.seen[offset]


class SnapshotCollector(Collector):
    """Exposes the monitor's latest snapshot to Prometheus."""

    def __init__(self, monitor: DeadLetterMonitor):
        self._monitor = monitor

    def collect(self) -> Iterable[Any]:
        monitor = self._monitor
        snapshot = monitor.snapshot
        topic = monitor.settings.kafka_dlq_topic
        failures = CounterMetricFamily(
            "agent_dlq_watch_webhook_failures",
            "Webhook calls that failed (network error or non-2xx answer).",
            labels=["dlq_topic"],
        )
        failures.add_metric([topic], monitor.webhook_failures)
        yield failures
        if snapshot is None:
            return
        yield from _per_type(
            "agent_dlq_depth",
            "Dead letters after the triage group's committed offsets, per error type.",
            topic,
            snapshot.depth_by_type,
        )
        yield from _per_type(
            "agent_dlq_dead_letters_last_hour",
            "Dead letters that failed in the last hour, per error type.",
            topic,
            snapshot.last_hour_by_type,
        )
        yield _gauge(
            "agent_dlq_oldest_unhandled_timestamp_seconds",
            "Unix time the oldest unhandled dead letter failed (0 when none).",
            topic,
            snapshot.oldest_unhandled or 0,
        )
        yield _gauge(
            "agent_dlq_watch_threshold_per_hour",
            "The dead letters an hour above which watch alerts.",
            topic,
            snapshot.threshold_per_hour,
        )
        yield _gauge(
            "agent_dlq_watch_breached",
            "1 while a watch threshold is crossed.",
            topic,
            1 if snapshot.breached else 0,
        )
        yield _gauge(
            "agent_dlq_watch_last_scan_timestamp_seconds",
            "Unix time of the last completed scan of the dead-letter topic.",
            topic,
            snapshot.at.timestamp(),
        )
        if snapshot.source_lag is not None:
            lag = GaugeMetricFamily(
                "agent_dlq_source_lag",
                "Records of the source topic the consumer group has not committed.",
                labels=["topic", "group"],
            )
            lag.add_metric(
                [
                    monitor.settings.kafka_topic,
                    monitor.settings.kafka_group_id,
                ],
                snapshot.source_lag,
            )
            yield lag


def exporter_registry(monitor: DeadLetterMonitor) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(monitor))
    return registry


class Notifier:
    """Calls the webhook on each change between breached and not breached."""

    def __init__(self, monitor: DeadLetterMonitor, url: str | None):
        self._monitor = monitor
        self._url = url
        self._announced = False

    async def update(self, snapshot: Snapshot) -> None:
        if self._url is None or snapshot.breached == self._announced:
            return
        status = "firing" if snapshot.breached else "resolved"
        body = {"status": status, "alert": "AgentDLQThresholdCrossed"}
        body.update(snapshot.as_json())
        if await asyncio.to_thread(_post, self._url, body):
            self._announced = snapshot.breached
            logger.info("webhook notified status=%s", status)
        else:
            self._monitor.webhook_failures += 1


def _post(url: str, body: dict[str, Any]) -> bool:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "agent-dlq"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as reply:
            status: int = reply.status
    except urllib.error.HTTPError as error:
        logger.warning("webhook answered status=%s", error.code)
        return False
    except OSError as error:
        # The URL often holds a token: name the failure, never the URL.
        logger.warning("webhook call failed: %s", type(error).__name__)
        return False
    if not 200 <= status < 300:
        logger.warning("webhook answered status=%s", status)
        return False
    return True


def _per_type(
    name: str, documentation: str, topic: str, values: dict[str, int]
) -> Iterable[GaugeMetricFamily]:
    family = GaugeMetricFamily(name, documentation, labels=["dlq_topic", "error_type"])
    for error_type, count in sorted(values.items()):
        family.add_metric([topic, error_type], count)
    yield family


def _gauge(
    name: str, documentation: str, topic: str, value: float
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["dlq_topic"])
    family.add_metric([topic], value)
    return family


async def run_watch(
    monitor: DeadLetterMonitor,
    notifier: Notifier,
    *,
    interval: float,
    stop: asyncio.Event,
    exit_on_breach: bool,
    on_snapshot: Callable[[Snapshot], None] | None = None,
) -> bool:
    """Scan every ``interval`` seconds until ``stop``; True when it ended on a
    breach (``exit_on_breach``)."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            snapshot = await monitor.scan()
        except OperatorError as error:
            # Keep watching through broker hiccups; the last-scan timestamp
            # stops moving, which is what AgentDLQWatchStale alerts on.
            logger.warning("scan failed, retrying next interval: %s", error)
        else:
            await notifier.update(snapshot)
            if on_snapshot is not None:
                on_snapshot(snapshot)
            if exit_on_breach and snapshot.breached:
                return True
        remaining = interval - (time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(remaining, 0.0))
    return False
