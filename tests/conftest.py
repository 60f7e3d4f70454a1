"""Fixtures: the real services for integration tests, unique names per test.

Kafka and PostgreSQL sit behind one provider interface each. The default
provider is the project's local stack (reused when it runs, else started for
the session and stopped after). ``KAFKA_BOOTSTRAP_SERVERS`` and
``POSTGRES_DSN`` in the environment point the suite at existing servers
instead. A provider for another source (testcontainers, where a Docker engine
exists) implements the same ``ServiceProvider`` protocol.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import pytest

from consumer_patch.stack.kafka import KafkaService
from consumer_patch.stack.postgres import PostgresService
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


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names unique to the test, for topics and consumer groups."""
    token = uuid.uuid4().hex[:10]

    def name(prefix: str) -> str:
        return f"{prefix}-{token}"

    return name
