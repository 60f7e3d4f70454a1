"""``agent-dlq watch``: monitor the dead-letter topic, export metrics, alert."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable

from prometheus_client import start_http_server

from consumer_patch.cli.exit_codes import EXIT_THRESHOLD
from consumer_patch.cli.filters import natural_argument, positive_argument
from consumer_patch.cli.output import table
from consumer_patch.operator.watch import (
    DeadLetterMonitor,
    Notifier,
    Snapshot,
    exporter_registry,
    run_watch,
)
from consumer_patch.settings import Settings, load_settings

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 15


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="monitor DLQ rate and depth, export Prometheus metrics, alert",
        description="Scan KAFKA_DLQ_TOPIC every --interval seconds: dead letters in "
        "the last hour and depth (after the triage group's offsets), per error "
        "type, served as Prometheus metrics on METRICS_HOST:WATCH_METRICS_PORT. "
        "When more than KAFKA_DLQ_ALERT_RATE_PER_HOUR dead letters failed in the "
        "last hour, or the depth exceeds KAFKA_DLQ_ALERT_DEPTH, it POSTs JSON to "
        "KAFKA_DLQ_ALERT_WEBHOOK_URL (status firing, later resolved) and, with "
        f"--exit-on-breach, exits with status {EXIT_THRESHOLD}.",
    )
    parser.add_argument(
        "--threshold",
        type=positive_argument,
        metavar="N",
        help="alert above N dead letters an hour "
        "(default KAFKA_DLQ_ALERT_RATE_PER_HOUR, 100)",
    )
    parser.add_argument(
        "--max-depth",
        type=positive_argument,
        metavar="N",
        help="alert when more than N dead letters await triage "
        "(default KAFKA_DLQ_ALERT_DEPTH; off when unset)",
    )
    parser.add_argument(
        "--webhook",
        metavar="URL",
        help="POST alerts here (default KAFKA_DLQ_ALERT_WEBHOOK_URL)",
    )
    parser.add_argument(
        "--interval",
        type=positive_argument,
        default=DEFAULT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help=f"seconds between scans (default {DEFAULT_INTERVAL_SECONDS})",
    )
    parser.add_argument(
        "--port",
        type=natural_argument,
        metavar="PORT",
        help="metrics port (default WATCH_METRICS_PORT, 9109; 0 picks a free one)",
    )
    parser.add_argument(
        "--no-exporter", action="store_true", help="do not serve metrics"
    )
    parser.add_argument(
        "--exit-on-breach",
        action="store_true",
        help=f"exit with status {EXIT_THRESHOLD} once a threshold is crossed",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help=f"scan once, print, call the webhook if needed, exit {EXIT_THRESHOLD} "
        "on a breach (for cron jobs and CI)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON (one line per scan)"
    )
    parser.set_defaults(handler=run, command_parser=parser)


def run(arguments: argparse.Namespace) -> int:
    if arguments.webhook is not None and not arguments.webhook.startswith(
        ("http://", "https://")
    ):
        arguments.command_parser.error("--webhook must be an http:// or https:// URL")
    settings = load_settings()
    breached = asyncio.run(_watch(settings, arguments))
    return EXIT_THRESHOLD if breached else 0


async def _watch(settings: Settings, arguments: argparse.Namespace) -> bool:
    monitor = DeadLetterMonitor(
        settings, threshold_per_hour=arguments.threshold, max_depth=arguments.max_depth
    )
    secret = settings.kafka_dlq_alert_webhook_url
    url = arguments.webhook or (secret.get_secret_value() if secret else None)
    notifier = Notifier(monitor, url)
    printer = _printer(arguments.json)
    await monitor.start()
    try:
        if arguments.once:
            snapshot = await monitor.scan()
            await notifier.update(snapshot)
            printer(snapshot)
            return snapshot.breached
        server = None
        if not arguments.no_exporter:
            port = (
                settings.watch_metrics_port
                if arguments.port is None
                else arguments.port
            )
            server, _thread = start_http_server(
                port, settings.metrics_host, exporter_registry(monitor)
            )
            logger.info(
                "metrics on http://%s:%s/metrics",
                settings.metrics_host,
                server.server_address[1],
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop_signal, stop.set)
        try:
            return await run_watch(
                monitor,
                notifier,
                interval=arguments.interval,
                stop=stop,
                exit_on_breach=arguments.exit_on_breach,
                on_snapshot=printer,
            )
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
    finally:
        await monitor.stop()


def _printer(as_json: bool) -> Callable[[Snapshot], None]:
    def show(snapshot: Snapshot) -> None:
        if as_json:
            print(json.dumps(snapshot.as_json(), sort_keys=True), flush=True)
            return
        state = (
            "BREACHED: " + "; ".join(snapshot.reasons()) if snapshot.breached else "ok"
        )
        at = snapshot.at.isoformat(timespec="seconds")
        print(
            f"{at}  last hour {snapshot.last_hour}  depth {snapshot.depth}  {state}",
            flush=True,
        )
        types = sorted(set(snapshot.last_hour_by_type) | set(snapshot.depth_by_type))
        if types:
            table(
                [
                    {
                        "error_type": name,
                        "last_hour": snapshot.last_hour_by_type.get(name, 0),
                        "depth": snapshot.depth_by_type.get(name, 0),
                    }
                    for name in types
                ],
                ("error_type", "last_hour", "depth"),
            )
        sys.stdout.flush()

    return show
