"""``python -m bench.profile SIDE``: where one side of a comparison spends its time.

Prepares a topic on the local stack (as ``python -m bench`` does), runs the
side in a worker process under pyinstrument, and writes the call tree to a
text file (printed as well). Sides: ``clean`` and ``poison`` (our consumer on
a clean stream and on 1 % poison), ``all-poison`` (a stream of poison only)
and ``replay`` (replaying those dead letters).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from bench import data
from bench.runner import REPOSITORY, WorkerRunner
from bench.services import bench_services
from bench.worker import WorkerSpec
from consumer_patch.topics import dead_letter_topic, ensure_topics, source_topic

SIDES = ("clean", "poison", "all-poison", "replay")


async def profile(
    bootstrap: str, side: str, records: int, report: Path, log: Path
) -> None:
    run = f"bench-profile-{uuid.uuid4().hex[:8]}"
    source, dlq, target = f"{run}-source", f"{run}-dlq", f"{run}-target"
    await ensure_topics(
        bootstrap, [source_topic(source), dead_letter_topic(dlq), source_topic(target)]
    )
    ratio, kinds = {
        "clean": (0.0, data.MIXED),
        "poison": (0.01, data.MIXED),
    }.get(side, (1.0, data.DECODE_FAILURES))
    await asyncio.sleep(1)  # let the new topics reach the broker's metadata
    await data.produce(bootstrap, source, data.make_stream(records, ratio, kinds))
    ours = WorkerSpec(
        "ours",
        bootstrap,
        source,
        records,
        group=f"{run}-group",
        dlq_topic=dlq,
        handler="refuse",
    )
    runner = WorkerRunner(log)
    try:
        if side == "replay":
            await runner.run(ours)
            spec = WorkerSpec(
                "replay",
                bootstrap,
                target,
                records,
                source_topic=dlq,
                ledger_topic=f"{run}-ledger",
            )
        else:
            spec = ours
        with log.open("ab") as stream:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.worker",
                spec.to_json(),
                str(report),
                cwd=REPOSITORY,
                stderr=stream,
            )
            await process.wait()
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            ledger = [f"{run}-ledger"] if side == "replay" else []
            await admin.delete_topics([source, dlq, target, *ledger])
        finally:
            await admin.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("side", choices=SIDES)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--out", type=Path, help="call tree file (default: a temp)")
    arguments = parser.parse_args(argv)
    report: Path = arguments.out or Path(f"/tmp/bench-profile-{arguments.side}.txt")

    with bench_services(False, lambda message: print(message, file=sys.stderr)) as s:
        asyncio.run(
            profile(
                s.bootstrap_servers,
                arguments.side,
                arguments.records,
                report,
                s.worker_log,
            )
        )
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
