"""The local stack: real Kafka, PostgreSQL, S3 and Kafka Connect started here.

``LocalStack.up()`` starts the services in order and writes what clients need
to ``.stack/env``; when one fails to start, those already started by this call
are stopped again, so nothing is left half-running.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from consumer_patch.errors import StackError
from consumer_patch.stack.connect import ConnectService
from consumer_patch.stack.kafka import KafkaService
from consumer_patch.stack.postgres import PostgresService
from consumer_patch.stack.s3 import S3Service
from consumer_patch.stack.services import Service, ServiceStatus, StackPaths, State

__all__ = ["LocalStack", "ServiceStatus", "StackPaths"]

logger = logging.getLogger(__name__)


class LocalStack:
    def __init__(self, paths: StackPaths | None = None):
        self.paths = paths or StackPaths.default()
        state = State(self.paths.state_file)
        self.kafka = KafkaService(self.paths, state)
        self.postgres = PostgresService(self.paths, state)
        self.s3 = S3Service(self.paths, state)
        self.connect = ConnectService(
            self.paths, state, lambda: self.kafka.bootstrap_servers, self.s3.environment
        )
        self.services: Sequence[Service] = (
            self.kafka,
            self.postgres,
            self.s3,
            self.connect,
        )

    def up(self) -> dict[str, str]:
        """Start every service not yet running; return the connection settings."""
        self.paths.root.mkdir(parents=True, exist_ok=True)
        started: list[Service] = []
        for service in self.services:
            was_running = service.status().state == "running"
            try:
                service.start()
            except BaseException:
                service.stop()
                for other in reversed(started):
                    other.stop()
                raise
            if not was_running:
                started.append(service)
        environment = self.environment()
        self._write_env(environment)
        return environment

    def down(self) -> list[ServiceStatus]:
        """Stop what ``up`` started, newest first; return what each was before."""
        before = self.status()
        for service in reversed(self.services):
            service.stop()
        self.paths.env_file.unlink(missing_ok=True)
        return before

    def status(self) -> list[ServiceStatus]:
        return [service.status() for service in self.services]

    def is_up(self) -> bool:
        return all(status.is_up for status in self.status())

    def environment(self) -> dict[str, str]:
        environment: dict[str, str] = {}
        for service in self.services:
            environment.update(service.environment())
        return environment

    def _write_env(self, environment: dict[str, str]) -> None:
        lines = [f"{name}={value}" for name, value in environment.items()]
        self.paths.env_file.write_text("\n".join(lines) + "\n")


def require_running(stack: LocalStack) -> dict[str, str]:
    """The stack's settings, or a StackError naming the services that are down."""
    down = [status for status in stack.status() if not status.is_up]
    if down:
        names = ", ".join(f"{status.name} ({status.state})" for status in down)
        raise StackError(
            f"local stack is not running: {names}; run `agent-dlq stack up`"
        )
    return stack.environment()
