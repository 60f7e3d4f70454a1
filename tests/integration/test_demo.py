"""`agent-dlq demo`, the README's main command, on a local stack of its own.

Brings a whole stack up in a temporary folder (Kafka, PostgreSQL, s3proxy,
Kafka Connect with the archive sink), runs the pipeline with poison of every
kind, checks the report adds up and the dead letters reached the archive,
then takes the stack down and checks nothing of it still runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DECODE_KINDS = {"NullValueError", "NotUTF8Error", "NotJSONError", "ValidationError"}


def _agent_dlq(
    stack: Path, *arguments: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KAFKA_", "POSTGRES_", "AWS_", "ARCHIVE_"))
    }
    environment["AGENT_DLQ_STACK_DIR"] = str(stack)
    return subprocess.run(
        [sys.executable, "-m", "consumer_patch.cli.main", *arguments],
        env=environment,
        cwd=stack.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# A whole stack starts in a new folder: more than the suite's default limit.
@pytest.mark.timeout(900)
def test_demo_reports_every_record_and_finds_its_dead_letters_archived(
    tmp_path: Path,
) -> None:
    stack = tmp_path / "stack"
    try:
        demo = _agent_dlq(
            stack,
            "demo",
            "--records",
            "400",
            "--poison-every",
            "8",
            "--json",
            timeout=600,
        )
        report = json.loads(demo.stdout) if demo.returncode == 0 else {}
    finally:
        down = _agent_dlq(stack, "stack", "down", timeout=180)
        status = _agent_dlq(stack, "stack", "status", "--json", timeout=60)

    dead = report.get("dead_lettered_by_error_type", {})
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert report["produced"] == 400
    assert report["stored"] + sum(dead.values()) == 400
    assert sum(dead.values()) == sum(report["poison_produced"].values())
    assert set(dead) >= DECODE_KINDS
    assert report["archived_dead_letters"] == sum(dead.values())
    assert down.returncode == 0, down.stderr[-2000:]
    services = json.loads(status.stdout)["services"]
    assert {service["state"] for service in services} == {"stopped"}, services
