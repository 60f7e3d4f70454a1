"""Kafka Connect in distributed mode, with the archive's S3 sink registered.

One worker on 127.0.0.1 keeps its configuration, offsets and status in
topics with a single replica. Its ``plugin.path`` holds the bundled S3 sink
(``connect/plugin``). Once the worker answers, the dead-letter topic is
created if missing and the archive connector is registered from
:func:`consumer_patch.connector.s3_sink_connector_config`, the function the
Pulumi program uses, so the local archive has the production layout.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from consumer_patch.archive.connect import (
    CONNECT_URL_VARIABLE,
    ConnectClient,
    ConnectError,
    ConnectorState,
)
from consumer_patch.archive.s3 import (
    ACCESS_KEY_VARIABLE,
    BUCKET_VARIABLE,
    ENDPOINT_VARIABLE,
    REGION_VARIABLE,
    SECRET_KEY_VARIABLE,
)
from consumer_patch.connector import (
    CONNECTOR_NAME,
    DEFAULT_ARCHIVE_LAYOUT,
    ArchiveLayout,
    ConnectorFlavor,
    s3_sink_connector_config,
)
from consumer_patch.errors import StackError
from consumer_patch.stack import maven, process
from consumer_patch.stack.connect_plugin import build_plugin
from consumer_patch.stack.services import (
    ServiceStatus,
    StackPaths,
    State,
    log_config,
    pid_status,
)
from consumer_patch.topics import dead_letter_topic, ensure_topics

NAME = "connect"
MAIN_CLASS = "org.apache.kafka.connect.cli.ConnectDistributed"
READY_TIMEOUT_SECONDS = 90.0
CONNECTOR_TIMEOUT_SECONDS = 60.0
HEAP = "-Xmx512m"
RETRIED_STATUSES = frozenset({409, 503})
GROUP_ID = "agent-dlq-connect"
# How often the worker commits sink offsets, which is when the S3 sink stores
# what it buffered: the bound on how long a dead letter takes to reach the
# archive. Connect's default is 60 s.
OFFSET_FLUSH_INTERVAL_MS = 5000

WORKER_PROPERTIES = """\
bootstrap.servers={bootstrap}
group.id={group_id}
listeners=http://127.0.0.1:{port}
rest.advertised.host.name=127.0.0.1
rest.advertised.port={port}
key.converter=org.apache.kafka.connect.converters.ByteArrayConverter
value.converter=org.apache.kafka.connect.converters.ByteArrayConverter
config.storage.topic={group_id}-configs
offset.storage.topic={group_id}-offsets
status.storage.topic={group_id}-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
offset.storage.partitions=5
status.storage.replication.factor=1
status.storage.partitions=1
offset.flush.interval.ms={flush_interval_ms}
plugin.path={plugin_path}
plugin.discovery=service_load
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
scheduled.rebalance.max.delay.ms=0
session.timeout.ms=6000
heartbeat.interval.ms=2000
consumer.session.timeout.ms=6000
consumer.heartbeat.interval.ms=2000
"""
# scheduled.rebalance.max.delay.ms=0: with one worker there is nobody to wait
# for, so a restarted worker takes its connectors back at once instead of
# after Connect's default five minutes. The session timeouts (the broker's
# minimum, 6 s): after a crash, the worker group and the sink's consumer
# group wait this long for the dead member before the restarted worker gets
# its work back (the defaults are 10 s and 45 s).


def local_connector_config(
    archive_environment: dict[str, str],
    layout: ArchiveLayout = DEFAULT_ARCHIVE_LAYOUT,
    name: str = CONNECTOR_NAME,
) -> dict[str, str]:
    """The archive sink's configuration for the local S3 endpoint.

    The keys are read by the worker from its own environment through
    Kafka Connect's ``EnvVarConfigProvider``, so they are never stored in
    Connect's configuration topic.
    """
    return s3_sink_connector_config(
        ConnectorFlavor.BUNDLED,
        bucket=archive_environment[BUCKET_VARIABLE],
        region=archive_environment[REGION_VARIABLE],
        endpoint_url=archive_environment[ENDPOINT_VARIABLE],
        access_key_id=f"${{env:{ACCESS_KEY_VARIABLE}}}",
        secret_access_key=f"${{env:{SECRET_KEY_VARIABLE}}}",
        path_style_access=True,
        layout=layout,
        name=name,
    )


def plugins_root(paths: StackPaths) -> Path:
    """The worker's ``plugin.path``: every folder below it is one plugin."""
    return paths.lib / "connect-plugins"


class ConnectService:
    name = NAME

    def __init__(
        self,
        paths: StackPaths,
        state: State,
        bootstrap_servers: Callable[[], str],
        archive_environment: Callable[[], dict[str, str]],
    ):
        self._paths = paths
        self._state = state
        self._bootstrap_servers = bootstrap_servers
        self._archive_environment = archive_environment

    @property
    def _config_path(self) -> Path:
        return self._paths.root / "config" / "connect-worker.properties"

    def _port(self) -> int:
        return self._state.stable_port(NAME)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port()}"

    @property
    def client(self) -> ConnectClient:
        return ConnectClient(self.url)

    def environment(self) -> dict[str, str]:
        return {CONNECT_URL_VARIABLE: self.url}

    def status(self) -> ServiceStatus:
        return pid_status(NAME, self._paths, str(self._config_path), self.url)

    def connector_states(self) -> list[ConnectorState]:
        """Every connector on the worker with its state; empty when it is down."""
        if self.status().state != "running":
            return []
        client = self.client
        try:
            states = [client.status(name) for name in client.connector_names()]
        except ConnectError:
            return []
        return [state for state in states if state is not None]

    def start(self) -> None:
        if self.status().state == "running":
            self._register_archive_connector()
            return
        process.require_java("Kafka Connect")
        lib = maven.resolve_jars(NAME, self._paths.lib)
        plugins = plugins_root(self._paths)
        build_plugin(plugins, lib)
        self._write_config(plugins)

        command = process.java_command(
            HEAP, log_config(self._paths), lib, [MAIN_CLASS, str(self._config_path)]
        )
        # The connector reads the S3 keys from the worker's environment.
        environment = dict(os.environ) | self._archive_environment()
        log = self._paths.log(NAME)
        child = process.spawn(command, log, environment)
        process.write_pid(self._paths.pid(NAME), child.pid)
        try:
            # The REST API answers before the worker has read its
            # configuration topic; listing connectors succeeds only after.
            process.wait_ready(
                child,
                log,
                "Kafka Connect",
                self._lists_connectors,
                READY_TIMEOUT_SECONDS,
            )
            self._register_archive_connector()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process.stop_by_pid_file(self._paths.pid(NAME), str(self._config_path))

    def _write_config(self, plugins: Path) -> None:
        self._config_path.parent.mkdir(parents=True, exist_ok=True)
        self._config_path.write_text(
            WORKER_PROPERTIES.format(
                bootstrap=self._bootstrap_servers(),
                group_id=GROUP_ID,
                port=self._port(),
                flush_interval_ms=OFFSET_FLUSH_INTERVAL_MS,
                plugin_path=plugins,
            )
        )

    def _lists_connectors(self) -> bool:
        try:
            self.client.connector_names()
        except ConnectError:
            return False
        return True

    def _register_archive_connector(self) -> None:
        layout = DEFAULT_ARCHIVE_LAYOUT
        asyncio.run(
            ensure_topics(self._bootstrap_servers(), [dead_letter_topic(layout.topic)])
        )
        config = local_connector_config(self._archive_environment(), layout)
        client = self.client
        try:
            _put_when_leader_known(client, CONNECTOR_NAME, config)
            client.wait_until_running(CONNECTOR_NAME, CONNECTOR_TIMEOUT_SECONDS)
        except ConnectError as error:
            raise StackError(
                f"the archive connector did not start: {error}\n"
                f"last lines of {self._paths.log(NAME)}:\n"
                + process.log_tail(self._paths.log(NAME))
            ) from error


def _put_when_leader_known(
    client: ConnectClient, name: str, config: dict[str, str]
) -> None:
    # Right after start-up the worker refuses writes with 409 or 503 until
    # the group has a leader and the configuration topic is read.
    deadline = time.monotonic() + CONNECTOR_TIMEOUT_SECONDS
    while True:
        try:
            client.put_connector(name, config)
            return
        except ConnectError as error:
            if error.status not in RETRIED_STATUSES or time.monotonic() > deadline:
                raise
        time.sleep(0.5)
