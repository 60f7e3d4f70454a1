"""`agent-dlq stack` starts once, stops exactly what it started, and tells the truth.

Runs a second local stack in a temporary folder (its own Kafka; PostgreSQL is
the suite's, through POSTGRES_DSN).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer_patch.errors import StackError
from consumer_patch.stack import LocalStack, maven
from consumer_patch.stack.services import StackPaths, State, free_port
from tests.conftest import Services


@pytest.fixture
def stack(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalStack]:
    monkeypatch.setenv("POSTGRES_DSN", services.postgres_dsn)
    monkeypatch.setenv("AGENT_DLQ_STACK_DIR", str(tmp_path / "stack"))
    paths = StackPaths(tmp_path / "stack")
    # Share the suite's resolved jars: resolving is tested by every stack start.
    shared_lib = StackPaths.default().lib
    if shared_lib.is_dir():
        paths.root.mkdir(parents=True)
        paths.lib.symlink_to(shared_lib)
    local = LocalStack(paths)
    try:
        yield local
    finally:
        local.down()


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer_patch.cli.main", "stack", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )


def test_up_twice_is_a_no_op_and_down_stops_exactly_what_up_started(
    stack: LocalStack,
) -> None:
    first = stack.up()
    pids = _running_pids(stack)
    second = stack.up()

    assert first == second
    assert _running_pids(stack) == pids
    # PostgreSQL is the suite's (POSTGRES_DSN): used, never started here.
    assert set(pids) == {"kafka", "s3proxy", "connect"}
    env_file = stack.paths.env_file.read_text()
    assert f"KAFKA_BOOTSTRAP_SERVERS={first['KAFKA_BOOTSTRAP_SERVERS']}" in env_file
    assert "POSTGRES_DSN=" in env_file

    stack.down()

    assert [name for name, pid in pids.items() if _alive(pid)] == []
    assert {status.state for status in stack.status()} <= {"stopped", "external"}


def test_a_service_failing_after_others_started_stops_them_again(
    stack: LocalStack,
) -> None:
    with _taken_port() as port:
        # s3proxy starts third, after Kafka; its port is taken.
        State(stack.paths.state_file).save_section(
            "s3proxy", {"port": port, "secret_access_key": "local-test-secret"}
        )
        result = _cli("up")

    assert result.returncode != 0
    assert "last lines of" in result.stderr
    assert "Traceback" not in result.stderr
    assert stack.kafka.status().state == "stopped"
    assert stack.s3.status().state == "stopped"


@contextlib.contextmanager
def _taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something is listening on."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        yield blocker.getsockname()[1]


def _running_pids(stack: LocalStack) -> dict[str, int]:
    return {
        status.name: status.pid
        for status in stack.status()
        if status.state == "running" and status.pid is not None
    }


def _alive(pid: int) -> bool:
    # A stopped service can linger as a zombie until this process (its
    # parent, since the stack was started in-process) reaps it: not alive.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in {"Z", "X"}


def test_status_notices_a_broker_killed_by_hand(stack: LocalStack) -> None:
    stack.kafka.start()
    pid = stack.kafka.status().pid
    assert pid is not None

    os.kill(pid, signal.SIGKILL)
    time.sleep(1.0)
    result = _cli("status", "--json")

    assert result.returncode == 3
    assert '"service": "kafka",\n      "state": "dead"' in result.stdout
    assert stack.kafka.status().state == "dead"


@pytest.mark.parametrize(
    "looks_like",
    [
        [],  # any unrelated process
        # a Kafka broker on its command line, but another stack's
        ["kafka.Kafka", "/elsewhere/other-stack/config/kafka-server.properties"],
    ],
    ids=["unrelated-process", "another-stacks-broker"],
)
def test_a_pid_file_naming_a_process_not_ours_is_never_signalled(
    stack: LocalStack, looks_like: list[str]
) -> None:
    innocent = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", *looks_like]
    )
    try:
        stack.paths.pid("kafka").parent.mkdir(parents=True, exist_ok=True)
        stack.paths.pid("kafka").write_text(f"{innocent.pid}\n")

        assert stack.kafka.status().state == "dead"
        stack.down()

        assert innocent.poll() is None
        assert not stack.paths.pid("kafka").exists()
    finally:
        innocent.kill()
        innocent.wait()


def test_a_broker_that_cannot_start_leaves_nothing_running(stack: LocalStack) -> None:
    with _taken_port() as port:
        State(stack.paths.state_file).save_section(
            "kafka", {"port": port, "controller_port": free_port()}
        )
        with pytest.raises(StackError, match="last lines of"):
            stack.up()

    assert stack.kafka.status().state == "stopped"
    assert not stack.paths.pid("kafka").exists()


def test_resolved_jars_are_reused_without_maven(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The suite's stack has resolved Kafka's jars; a second resolution must
    # neither download nor even run Maven, so it works with no mvn at all.
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("the suite's Kafka is external; no jars were resolved here")
    lib = StackPaths.default().lib
    assert (lib / "kafka" / ".resolved").is_file(), "the suite resolved no Kafka jars"
    before = {path.name: path.stat().st_mtime_ns for path in (lib / "kafka").iterdir()}
    monkeypatch.setenv("PATH", "/nonexistent")

    folder = maven.resolve_jars("kafka", lib)

    assert folder == lib / "kafka"
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
