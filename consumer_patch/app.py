"""Wire the consumer to PostgreSQL, the metrics endpoint and process signals."""

from __future__ import annotations

import asyncio
import logging
import signal

import asyncpg
from aiokafka.errors import KafkaError

from consumer_patch.consumer import DeadLetterConsumer
from consumer_patch.envelope import scrub_secrets
from consumer_patch.errors import SettingsError
from consumer_patch.metrics import serve
from consumer_patch.settings import Settings
from consumer_patch.storage import PostgresWriter
from consumer_patch.topics import missing_topics

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_consumer(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """Run the consumer until SIGTERM or SIGINT, then finish the batch and commit.

    Raises:
        SettingsError: a topic is missing or POSTGRES_DSN is not set.
        UnhandledRecordError: a record failed while dead-lettering is off.
    """
    dsn = settings.require_postgres_dsn()  # before any connection is tried
    try:
        await _check_topics(settings)
    except KafkaError as error:
        raise SettingsError(
            f"KAFKA_BOOTSTRAP_SERVERS: cannot reach Kafka at "
            f"{settings.kafka_bootstrap_servers}: {type(error).__name__}: {error}"
        ) from error
    writer = PostgresWriter(dsn)
    try:
        await writer.start()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise SettingsError(
            "POSTGRES_DSN: cannot connect to PostgreSQL: "
            f"{type(error).__name__}: {scrub_secrets(str(error))}"
        ) from error
    consumer = DeadLetterConsumer(settings, writer, probe=writer.is_available)
    server = await serve(
        consumer.metrics, consumer.health, settings.metrics_host, settings.metrics_port
    )
    port = server.sockets[0].getsockname()[1]
    logger.info("metrics and health on http://%s:%s/", settings.metrics_host, port)

    loop = asyncio.get_running_loop()
    for stop_signal in STOP_SIGNALS:
        loop.add_signal_handler(stop_signal, consumer.request_stop)
    try:
        await consumer.start()
        if ready is not None:
            ready.set()
        await consumer.run()
    finally:
        for stop_signal in STOP_SIGNALS:
            loop.remove_signal_handler(stop_signal)
        await consumer.stop()
        server.close()
        await writer.close()
        logger.info("consumer stopped")


async def _check_topics(settings: Settings) -> None:
    needed = [settings.kafka_topic]
    if settings.kafka_dlq_enabled:
        needed.append(settings.kafka_dlq_topic)
    missing = await missing_topics(settings.kafka_client_options(), needed)
    if missing:
        raise SettingsError(
            f"KAFKA_TOPIC/KAFKA_DLQ_TOPIC: topic(s) {', '.join(missing)} do not "
            f"exist on {settings.kafka_bootstrap_servers}; create them first "
            "(`agent-dlq topics create` does it with the declared settings)"
        )
