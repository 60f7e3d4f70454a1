"""The dynamic provider speaks the Kafka Connect REST API as Connect expects.

A small in-process HTTP server records the requests and answers like a
Connect worker; no Kafka or Connect runs here.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from infra.connect_rest import _connect_rest_provider
from tests.infra.mocking import REPOSITORY


class FakeConnect:
    """Connectors by name, and every request seen."""

    def __init__(self) -> None:
        self.connectors: dict[str, dict[str, str]] = {}
        self.requests: list[tuple[str, str, Any, str | None]] = []


@pytest.fixture
def connect() -> Iterator[tuple[str, FakeConnect]]:
    state = FakeConnect()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _record(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            auth = self.headers.get("Authorization")
            state.requests.append((self.command, self.path, body, auth))
            return body

        def do_PUT(self) -> None:
            body = self._record()
            name = self.path.split("/")[2]
            if "connector.class" not in body:
                self._answer(400, {"error_code": 400, "message": "missing class"})
                return
            created = name not in state.connectors
            state.connectors[name] = body
            self._answer(201 if created else 200, {"name": name, "config": body})

        def do_GET(self) -> None:
            self._record()
            name = self.path.split("/")[2]
            if name not in state.connectors:
                self._answer(404, {"error_code": 404, "message": "not found"})
                return
            self._answer(200, state.connectors[name])

        def do_DELETE(self) -> None:
            self._record()
            name = self.path.split("/")[2]
            if state.connectors.pop(name, None) is None:
                self._answer(404, {"error_code": 404, "message": "not found"})
                return
            self._answer(204, None)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def _props(url: str, **overrides: Any) -> dict[str, Any]:
    props = {
        "connectUrl": url,
        "connectorName": "agent-actions-dlq-s3-sink",
        "config": {
            "name": "agent-actions-dlq-s3-sink",
            "connector.class": "io.confluent.connect.s3.S3SinkConnector",
            "topics": "agent-actions-dlq",
        },
    }
    return props | overrides


def test_create_and_update_put_the_configuration(
    connect: tuple[str, FakeConnect],
) -> None:
    url, state = connect
    provider = _connect_rest_provider()
    props = _props(url)

    created = provider.create(props)
    changed = _props(url, config={**props["config"], "tasks.max": "3"})
    provider.update(created.id, props, changed)

    assert created.id == "agent-actions-dlq-s3-sink"
    assert [(method, path) for method, path, _, _ in state.requests] == [
        ("PUT", "/connectors/agent-actions-dlq-s3-sink/config"),
        ("PUT", "/connectors/agent-actions-dlq-s3-sink/config"),
    ]
    assert state.connectors["agent-actions-dlq-s3-sink"]["tasks.max"] == "3"


def test_basic_authentication_is_sent_when_configured(
    connect: tuple[str, FakeConnect],
) -> None:
    url, state = connect

    _connect_rest_provider().create(_props(url, username="pulumi", password="s3cret"))

    expected = "Basic " + base64.b64encode(b"pulumi:s3cret").decode()
    assert state.requests[0][3] == expected


def test_rejected_configuration_fails_with_connect_message(
    connect: tuple[str, FakeConnect],
) -> None:
    url, _ = connect

    with pytest.raises(RuntimeError, match=r"HTTP 400: .*missing class"):
        _connect_rest_provider().create(_props(url, config={"name": "x"}))


def test_delete_removes_and_tolerates_an_already_missing_connector(
    connect: tuple[str, FakeConnect],
) -> None:
    url, state = connect
    provider = _connect_rest_provider()
    props = _props(url)
    provider.create(props)

    provider.delete("agent-actions-dlq-s3-sink", props)
    provider.delete("agent-actions-dlq-s3-sink", props)

    assert state.connectors == {}


def test_read_reports_a_missing_connector_as_gone(
    connect: tuple[str, FakeConnect],
) -> None:
    url, _ = connect
    provider = _connect_rest_provider()
    props = _props(url)

    missing = provider.read("agent-actions-dlq-s3-sink", props)
    provider.create(props)
    present = provider.read("agent-actions-dlq-s3-sink", props)

    assert missing.id == ""
    assert present.outs["config"] == props["config"]


def test_diff_replaces_on_new_name_and_updates_on_new_config() -> None:
    provider = _connect_rest_provider()
    old = _props("http://connect:8083")

    renamed = provider.diff("x", old, _props(old["connectUrl"], connectorName="y"))
    reconfigured = provider.diff(
        "x", old, _props(old["connectUrl"], config={**old["config"], "a": "b"})
    )
    unchanged = provider.diff("x", old, dict(old))

    assert renamed.replaces == ["connectorName"]
    assert renamed.delete_before_replace is True
    assert reconfigured.changes is True
    assert reconfigured.replaces == []
    assert unchanged.changes is False


def test_provider_unpickles_where_the_repository_is_not_importable(
    tmp_path: Path,
) -> None:
    # Pulumi's provider process loads the pickled provider from the state,
    # without this repository on its path.
    (tmp_path / "provider.b64").write_text(serialize_provider(_connect_rest_provider()))
    script = (
        "import base64, pathlib, sys\n"
        "repository = pathlib.Path(sys.argv[1]).resolve()\n"
        "sys.path = [p for p in sys.path if pathlib.Path(p).resolve() != repository]\n"
        "import dill\n"
        "blob = base64.b64decode(pathlib.Path('provider.b64').read_text())\n"
        "provider = dill.loads(blob)\n"
        "old = {'connectUrl': 'u', 'connectorName': 'a', 'config': {}}\n"
        "print(provider.diff('a', old, {**old, 'connectorName': 'b'}).replaces)\n"
    )

    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(REPOSITORY)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['connectorName']"
