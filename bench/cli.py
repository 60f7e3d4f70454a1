"""``python -m bench``: run every comparison, print the table, write the files."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import plot, report
from bench.runner import BenchError
from bench.services import BenchServices, bench_services
from bench.stats import compare
from bench.suite import COMPARISONS, PROFILES, Profile, Suite

DEFAULT_OUT = Path("docs/benchmarks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure what the dead-letter machinery costs, side by side "
        "with raw aiokafka, a raw producer and Kafka Connect's JDBC sink, on the "
        "local stack of AGENT_DLQ_STACK_DIR (default .stack). Starts what is not "
        "running and stops it again at the end.",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="full",
        help="full: the recorded run (about 10 minutes); quick: tiny sizes, "
        "to check the harness works",
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds per comparison (default: the profile's)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for results.json, results.md and rate.png "
        f"(default {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--no-connect",
        action="store_true",
        help="leave out the Kafka Connect comparison (and starting Connect)",
    )
    parser.add_argument(
        "--no-sweeps", action="store_true", help="leave out the sweeps and the plot"
    )
    return parser


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


async def run_suite(
    profile: Profile, services: BenchServices, sweeps: bool
) -> tuple[Suite, dict[str, str]]:
    suite = Suite(profile, services, say)
    failures: dict[str, str] = {}
    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("consumer comparisons", suite.consumer_group),
        ("dead-letter comparison", suite.dead_letter_group),
        ("replay comparison", suite.replay_group),
        ("PostgreSQL comparison", suite.postgres_group),
        ("isolation counts", suite.isolation_counts),
    ]
    if sweeps:
        steps.append(("sweeps", suite.sweeps))
    try:
        await suite.prepare()
        for name, step in steps:
            try:
                await step()
            except BenchError as error:
                say(f"{name} failed: {error}")
                failures[name] = str(error)
    finally:
        await suite.cleanup()
    return suite, failures


async def postgres_version(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    profile: Profile = PROFILES[arguments.profile]
    if arguments.rounds:
        profile = dataclasses.replace(profile, rounds=arguments.rounds)
    profile.check()
    started = datetime.now(UTC)
    clock = time.monotonic()
    machine = report.machine()

    with bench_services(not arguments.no_connect, say) as services:
        suite, failures = asyncio.run(
            run_suite(profile, services, not arguments.no_sweeps)
        )
        versions = {"postgresql": asyncio.run(postgres_version(services.postgres.dsn))}
        started_here = services.started

    comparisons = []
    skipped = dict(suite.skipped) | failures
    for spec in COMPARISONS:
        try:
            comparisons.append(compare(spec, suite.samples))
        except ValueError:
            skipped.setdefault(spec.key, "no measurement")
    findings = report.Findings(
        comparisons, suite.isolation, suite.peak_rss(), skipped, suite.samples
    )
    print(report.render_text(findings))

    context: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench", *(argv or sys.argv[1:])]),
        "started_at": started.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - clock, 1),
        "profile": dataclasses.asdict(profile),
        "source": report.source_state(),
        "machine": machine,
        "machine_after": {
            "load_average": report.machine()["load_average"],
            "busiest_processes": report.busiest_processes(),
        },
        "versions": {
            "kafka": "4.1.1 (KRaft, one node)",
            "kafka_connect": "4.1.1",
            "jdbc_sink": "io.debezium:debezium-connector-jdbc:3.2.0.Final",
            **versions,
        },
        "started_by_the_run": started_here,
    }
    out: Path = arguments.out
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "results.json", findings, context)
    (out / "results.md").write_text(report.render_markdown(findings))
    if not arguments.no_sweeps and suite.samples:
        caption = (
            f"{machine['cpu_model']}, {machine['nproc']} cores, "
            f"{started:%Y-%m-%d}; median of {profile.sweep_rounds} round(s), "
            "bars span min to max"
        )
        plot.plot(suite.samples, out / "rate.png", caption)
    say(f"wrote {out}/results.json, results.md and rate.png")
    return 1 if failures else 0
