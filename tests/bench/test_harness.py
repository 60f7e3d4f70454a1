"""The benchmark harness runs end to end on the real stack, with tiny sizes.

No rate is asserted here: timings belong in the benchmark's own report. This
only checks that every comparison is measured from both sides and that the
files the documentation shows are written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Services

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]
HARNESS_TIMEOUT_SECONDS = 240


def test_harness_measures_every_comparison_with_tiny_sizes(
    services: Services, tmp_path: Path
) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--profile",
            "quick",
            "--rounds",
            "1",
            "--no-connect",
            "--out",
            str(tmp_path),
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=HARNESS_TIMEOUT_SECONDS,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    measured = {comparison["key"] for comparison in results["comparisons"]}
    assert measured == {
        "consumer_vs_raw",
        "consumer_vs_raw_json",
        "dlq_on_vs_off",
        "poison_vs_clean",
        "dead_letter_vs_producer",
        "replay_vs_producer",
    }
    assert "postgres_vs_connect" in results["skipped"]
    assert all(sample["records"] > 0 for sample in results["samples"])
    assert all(item["met"] for item in results["isolation"]), results["isolation"]
    assert results["memory"]["peak_rss_mb"] > 0
    assert (tmp_path / "rate.png").stat().st_size > 0
    assert "A/B" in completed.stdout
