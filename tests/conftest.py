"""Fixtures: the real services for integration tests, unique names per test.

Kafka and PostgreSQL sit behind one provider interface each. The default
provider is the project's local stack (reused when it runs, else started for
the session and stopped after). ``KAFKA_BOOTSTRAP_SERVERS`` and
``POSTGRES_DSN`` in the environment point the suite at existing servers
instead. S3 and Kafka Connect (``archive_services``) follow the same rules,
with ``AWS_ENDPOINT_URL_S3`` and ``KAFKA_CONNECT_URL``, and start only for
the tests that use them. A provider for another source (testcontainers,
where a Docker engine exists) implements the same ``ServiceProvider``
protocol.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import pytest

from consumer_patch.archive.connect import CONNECT_URL_VARIABLE
from consumer_patch.archive.s3 import ENDPOINT_VARIABLE
from consumer_patch.stack.connect import ConnectService
from consumer_patch.stack.kafka import KafkaService
from consumer_patch.stack.postgres import PostgresService
from consumer_patch.stack.s3 import S3Service
from consumer_patch.stack.services import StackPaths, State


class ServiceProvider(Protocol):
    def start(self) -> str:
        """Make the service available; return its address (bootstrap or DSN)."""

    def stop(self) -> None:
        """Undo what ``start`` did (leave alone what was already running)."""


class ExternalProvider:
    """A server that someone else runs, named by an environment variable."""

    def __init__(self, address: str):
        self._address = address

    def start(self) -> str:
        return self._address

    def stop(self) -> None:
        pass


class LocalKafkaProvider:
    def __init__(self, paths: StackPaths):
        self._service = KafkaService(paths, State(paths.state_file))
        self._started = False

    def start(self) -> str:
        if self._service.status().state != "running":
            self._service.start()
            self._started = True
        return self._service.bootstrap_servers

    def stop(self) -> None:
        if self._started:
            self._service.stop()


class LocalPostgresProvider:
    def __init__(self, paths: StackPaths):
        self._service = PostgresService(paths, State(paths.state_file))
        self._started = False

    def start(self) -> str:
        if self._service.status().state != "running":
            self._started = True
        self._service.start()  # applies the schema even when already running
        return self._service.dsn

    def stop(self) -> None:
        if self._started:
            self._service.stop()

    @property
    def control(self) -> PostgresService | None:
        return None if os.environ.get("POSTGRES_DSN") else self._service


@dataclass(frozen=True)
class Services:
    bootstrap_servers: str
    postgres_dsn: str
    # Stops and restarts PostgreSQL, for outage tests; None when the server is
    # not the suite's own (POSTGRES_DSN from the environment).
    postgres_control: PostgresService | None = None


def _providers() -> tuple[ServiceProvider, LocalPostgresProvider]:
    paths = StackPaths.default()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    kafka: ServiceProvider = (
        ExternalProvider(bootstrap) if bootstrap else LocalKafkaProvider(paths)
    )
    # PostgresService itself uses POSTGRES_DSN when set, and only applies the
    # table schema to that server.
    return kafka, LocalPostgresProvider(paths)


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    kafka, postgres = _providers()
    try:
        bootstrap = kafka.start()
        dsn = postgres.start()
        yield Services(bootstrap, dsn, postgres.control)
    finally:
        postgres.stop()
        kafka.stop()


class LocalS3Provider:
    """s3proxy of the local stack; ``start`` also creates the archive bucket."""

    def __init__(self, paths: StackPaths):
        self._service = S3Service(paths, State(paths.state_file))
        self._started = False

    def start(self) -> str:
        if self._service.status().state != "running":
            self._started = True
        self._service.start()
        return self._service.endpoint_url

    def stop(self) -> None:
        if self._started:
            self._service.stop()

    def environment(self) -> dict[str, str]:
        return self._service.environment()


class LocalConnectProvider:
    """The local Connect worker, pointed at the suite's Kafka and S3."""

    def __init__(
        self, paths: StackPaths, bootstrap: str, s3_environment: dict[str, str]
    ):
        self.service = ConnectService(
            paths,
            State(paths.state_file),
            lambda: bootstrap,
            lambda: s3_environment,
        )
        self._started = False

    def start(self) -> str:
        if self.service.status().state != "running":
            self._started = True
        self.service.start()
        return self.service.url

    def stop(self) -> None:
        if self._started:
            self.service.stop()


@dataclass(frozen=True)
class ArchiveServices:
    connect_url: str
    # AWS_ENDPOINT_URL_S3, keys, region and ARCHIVE_BUCKET, as in .stack/env.
    s3_environment: dict[str, str]
    # Stops and restarts the Connect worker; None when the worker is not the
    # suite's own (KAFKA_CONNECT_URL from the environment).
    connect_control: ConnectService | None = None


@pytest.fixture(scope="session")
def archive_services(services: Services) -> Iterator[ArchiveServices]:
    """S3 and Kafka Connect, started only by the tests that need the archive.

    ``AWS_ENDPOINT_URL_S3`` (with ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` and ``ARCHIVE_BUCKET``) and
    ``KAFKA_CONNECT_URL`` in the environment point the suite at existing
    ones; such a worker needs the bundled sink on its plugin path.
    """
    paths = StackPaths.default()
    s3: LocalS3Provider | None = None
    connect: LocalConnectProvider | None = None
    try:
        if os.environ.get(ENDPOINT_VARIABLE):
            s3_environment = dict(os.environ)
        else:
            s3 = LocalS3Provider(paths)
            s3.start()
            s3_environment = s3.environment()
        external_url = os.environ.get(CONNECT_URL_VARIABLE)
        if external_url:
            yield ArchiveServices(external_url, s3_environment)
        else:
            connect = LocalConnectProvider(
                paths, services.bootstrap_servers, s3_environment
            )
            url = connect.start()
            yield ArchiveServices(url, s3_environment, connect.service)
    finally:
        if connect is not None:
            connect.stop()
        if s3 is not None:
            s3.stop()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names unique to the test, for topics and consumer groups."""
    token = uuid.uuid4().hex[:10]

    def name(prefix: str) -> str:
        return f"{prefix}-{token}"

    return name
