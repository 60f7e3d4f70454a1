"""The few Kafka Connect REST calls the local stack, the CLI and the tests make.

Create or replace a connector (``PUT /connectors/{name}/config``), read its
status, validate a configuration against the plugin's own definition
(``PUT /connector-plugins/{class}/config/validate``), and list plugins.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consumer_patch.errors import AgentDLQError

__all__ = [
    "ConnectClient",
    "ConnectError",
    "ConnectorState",
    "TaskState",
    "ValidationProblem",
]

CONNECT_URL_VARIABLE = "KAFKA_CONNECT_URL"
REQUEST_TIMEOUT_SECONDS = 10.0
RUNNING = "RUNNING"


class ConnectError(AgentDLQError):
    """A Connect REST call failed; ``status`` is the HTTP status, 0 when unreachable."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TaskState:
    id: int
    state: str
    worker: str
    trace: str | None


@dataclass(frozen=True)
class ConnectorState:
    """What ``GET /connectors/{name}/status`` reports."""

    name: str
    state: str
    worker: str
    tasks: tuple[TaskState, ...]
    trace: str | None = None

    @property
    def is_running(self) -> bool:
        """Whether the connector and at least one task, and every task, run."""
        return (
            self.state == RUNNING
            and bool(self.tasks)
            and all(task.state == RUNNING for task in self.tasks)
        )

    @property
    def summary(self) -> str:
        running = sum(task.state == RUNNING for task in self.tasks)
        return f"{self.state} ({running}/{len(self.tasks)} tasks running)"

    def failure(self) -> str | None:
        """The first stack trace Connect reports, if the connector or a task failed."""
        if self.trace:
            return self.trace
        for task in self.tasks:
            if task.trace:
                return task.trace
        return None


@dataclass(frozen=True)
class ValidationProblem:
    key: str
    message: str


class ConnectClient:
    """Calls to one Kafka Connect worker's REST API."""

    def __init__(self, url: str, timeout: float = REQUEST_TIMEOUT_SECONDS):
        self.url = url.rstrip("/")
        self._timeout = timeout

    def answers(self) -> bool:
        """Whether the worker's REST API answers."""
        try:
            self._call("GET", "/")
        except ConnectError:
            return False
        return True

    def connector_plugins(self) -> list[str]:
        """Classes of the connector plugins the worker has loaded."""
        plugins = self._call("GET", "/connector-plugins?connectorsOnly=true")
        return [str(plugin["class"]) for plugin in plugins]

    def put_connector(self, name: str, config: Mapping[str, str]) -> None:
        """Create the connector, or replace its configuration."""
        self._call("PUT", f"/connectors/{_segment(name)}/config", dict(config))

    def delete_connector(self, name: str) -> None:
        try:
            self._call("DELETE", f"/connectors/{_segment(name)}")
        except ConnectError as error:
            if error.status != 404:
                raise

    def connector_names(self) -> list[str]:
        return sorted(str(name) for name in self._call("GET", "/connectors"))

    def status(self, name: str) -> ConnectorState | None:
        """The connector's state, or None when no such connector exists."""
        try:
            body = self._call("GET", f"/connectors/{_segment(name)}/status")
        except ConnectError as error:
            if error.status == 404:
                return None
            raise
        return _connector_state(body)

    def validate(
        self, connector_class: str, config: Mapping[str, str]
    ) -> list[ValidationProblem]:
        """What the plugin and the worker find wrong with ``config`` (empty: valid)."""
        path = f"/connector-plugins/{_segment(connector_class)}/config/validate"
        body = self._call("PUT", path, dict(config))
        problems = []
        for entry in body.get("configs", []):
            value = entry.get("value", {})
            for message in value.get("errors", []):
                problems.append(ValidationProblem(str(value.get("name")), str(message)))
        return problems

    def wait_until_running(self, name: str, wait_seconds: float) -> ConnectorState:
        """Poll until the connector and its tasks run.

        Raises:
            ConnectError: When the connector or a task fails (with Connect's
                stack trace), or when it does not run within ``wait_seconds``.
        """
        deadline = time.monotonic() + wait_seconds
        state: ConnectorState | None = None
        while time.monotonic() < deadline:
            state = self.status(name)
            if state is not None and state.is_running:
                return state
            if state is not None and state.failure():
                raise ConnectError(
                    f"connector {name} is {state.summary}:\n{state.failure()}"
                )
            time.sleep(0.5)
        seen = state.summary if state else "not registered"
        raise ConnectError(
            f"connector {name} did not run within {wait_seconds:.0f}s: {seen}"
        )

    def _call(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise ConnectError(
                f"Connect {method} {path} failed with {error.code}: {_message(detail)}",
                error.code,
            ) from None
        except OSError as error:
            raise ConnectError(
                f"Kafka Connect at {self.url} is unreachable: {error}"
            ) from None
        return json.loads(text) if text else None


def _segment(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _message(detail: str) -> str:
    try:
        return str(json.loads(detail).get("message", detail))
    except (ValueError, AttributeError):
        return detail[:300]


def _connector_state(body: dict[str, Any]) -> ConnectorState:
    connector = body.get("connector", {})
    tasks = tuple(
        TaskState(
            int(task.get("id", 0)),
            str(task.get("state")),
            str(task.get("worker_id", "")),
            task.get("trace"),
        )
        for task in body.get("tasks", [])
    )
    return ConnectorState(
        name=str(body.get("name")),
        state=str(connector.get("state")),
        worker=str(connector.get("worker_id", "")),
        tasks=tasks,
        trace=connector.get("trace"),
    )
