"""The shipped Prometheus alert rules are valid and pass their promtool unit tests.

promtool comes from Debian's prometheus package (scripts/ensure-promtool.sh
installs it). Without it this test fails: alert rules that were never
checked must not pass as tested.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ALERTS = Path(__file__).resolve().parents[2] / "alerts"


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: run scripts/ensure-promtool.sh"
    return found


def test_alert_rules_are_valid() -> None:
    rules = sorted(ALERTS.glob("*.rules.yml"))

    result = subprocess.run(
        [_promtool(), "check", "rules", *map(str, rules)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert rules
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    tests = sorted((ALERTS / "tests").glob("*.test.yml"))

    result = subprocess.run(
        [_promtool(), "test", "rules", *map(str, tests)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert tests
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_section() -> None:
    rules = (ALERTS / "agent-dlq.rules.yml").read_text()
    runbook = (ALERTS.parent / "docs" / "runbook.md").read_text()

    names = [
        line.split(":", 1)[1].strip()
        for line in rules.splitlines()
        if line.strip().startswith("- alert:")
    ]

    assert names
    for name in names:
        assert f"## {name}" in runbook, name
        assert f"runbook: docs/runbook.md#{name.lower()}" in rules, name
