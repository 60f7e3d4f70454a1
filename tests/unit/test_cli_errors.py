"""Bad settings and unreachable services end in one line naming the problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _consume(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "POSTGRES"))
    }
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-m", "consumer_patch.cli.main", "consume"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_unreachable_kafka_names_the_setting(tmp_path: Path) -> None:
    result = _consume(
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
        POSTGRES_DSN="postgresql://u:secret@127.0.0.1:1/db",
    )

    assert result.returncode == 1
    assert (
        "agent-dlq: error: KAFKA_BOOTSTRAP_SERVERS: cannot reach Kafka" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_invalid_setting_names_the_variable(tmp_path: Path) -> None:
    result = _consume(tmp_path, KAFKA_BATCH_SIZE="lots")

    assert result.returncode == 1
    assert "KAFKA_BATCH_SIZE" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_dsn_is_named(tmp_path: Path) -> None:
    result = _consume(tmp_path, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")

    assert result.returncode == 1
    assert "POSTGRES_DSN" in result.stderr


def test_closed_output_pipe_ends_without_traceback(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        result = subprocess.run(
            [sys.executable, "-m", "consumer_patch.cli.main", "stack", "status"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, "AGENT_DLQ_STACK_DIR": str(tmp_path / "stack")},
            cwd=tmp_path,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)

    assert "Traceback" not in result.stderr
    assert "BrokenPipeError" not in result.stderr
