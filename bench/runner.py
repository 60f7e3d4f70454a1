"""Run the sides of a comparison alternately and keep every measurement."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.worker import RESULT_PREFIX, WorkerResult, WorkerSpec

WORKER_TIMEOUT_SECONDS = 300.0
REPOSITORY = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """A benchmark run could not be measured; the message says why."""


@dataclass
class Sample:
    """One measured run of one side."""

    side: str
    round: int
    records: int
    seconds: float
    cpu_seconds: float
    rss_mb: float | None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1)}


Side = Callable[[int], Awaitable[Sample]]


async def alternate(
    sides: Mapping[str, Side],
    rounds: int,
    progress: Callable[[str], None],
) -> list[Sample]:
    """Run every side once per round, rotating who goes first each round.

    With two sides the order is AB, BA, AB, ...: drift of the machine during
    the run (caches warming, another process starting) weighs on both sides
    alike, and each round gives one paired ratio.
    """
    names = list(sides)
    samples: list[Sample] = []
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            sample = await sides[name](number)
            progress(
                f"  round {number + 1}/{rounds} {name}: {sample.rate:,.0f} records/s"
            )
            samples.append(sample)
    return samples


class WorkerRunner:
    """Starts ``python -m bench.worker`` processes, their stderr to one log."""

    def __init__(self, log: Path):
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)

    async def start(self, spec: WorkerSpec) -> asyncio.subprocess.Process:
        with self.log.open("ab") as stream:
            stream.write(f"--- worker {spec.to_json()}\n".encode())
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.worker",
                spec.to_json(),
                cwd=REPOSITORY,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=stream,
            )

    async def finish(self, process: asyncio.subprocess.Process) -> WorkerResult:
        try:
            stdout, _ = await asyncio.wait_for(
                process.communicate(), WORKER_TIMEOUT_SECONDS
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            raise BenchError(
                f"a benchmark worker ran over {WORKER_TIMEOUT_SECONDS:.0f}s; "
                f"see {self.log}"
            ) from None
        lines = [
            line[len(RESULT_PREFIX) :]
            for line in stdout.decode().splitlines()
            if line.startswith(RESULT_PREFIX)
        ]
        if process.returncode != 0 or not lines:
            raise BenchError(
                f"a benchmark worker failed (exit {process.returncode}); see {self.log}"
            )
        return WorkerResult(**json.loads(lines[-1]))

    async def run(self, spec: WorkerSpec) -> WorkerResult:
        return await self.finish(await self.start(spec))
