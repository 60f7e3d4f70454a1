"""The servers a benchmark run needs, on the local stack of ``AGENT_DLQ_STACK_DIR``.

Kafka is the stack's own broker; PostgreSQL is a server of the benchmark's
that listens on TCP (``bench.postgres``); Kafka Connect is the stack's worker
(which needs the stack's S3 endpoint for its archive connector) with the
JDBC sink added to its plugins. What is already running is used as it is;
what this run starts, it stops again at the end, newest first.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import jdbc
from bench.postgres import TcpPostgres
from consumer_patch.archive.connect import ConnectClient
from consumer_patch.errors import StackError
from consumer_patch.stack import LocalStack, process
from consumer_patch.stack.services import StackPaths


@dataclass
class _Started:
    name: str
    stop: Callable[[], None]


@dataclass
class BenchServices:
    paths: StackPaths
    bootstrap_servers: str
    postgres: TcpPostgres
    connect: ConnectClient | None = None
    connect_pid: int | None = None
    connect_problem: str | None = None
    started: list[str] = field(default_factory=list)

    @property
    def worker_log(self) -> Path:
        return self.paths.log("bench-workers")


@contextlib.contextmanager
def bench_services(
    with_connect: bool, progress: Callable[[str], None]
) -> Iterator[BenchServices]:
    """Start what is missing; on exit stop exactly what was started here.

    When Kafka Connect cannot be had (no JDK, the connector does not
    resolve) the run goes on without it and ``connect_problem`` says why.
    """
    stack = LocalStack()
    started: list[_Started] = []
    try:
        progress(f"local stack in {stack.paths.root}")
        if stack.kafka.status().state != "running":
            progress("starting Kafka")
            stack.kafka.start()
            started.append(_Started("kafka", stack.kafka.stop))
        postgres = TcpPostgres(stack.paths)
        postgres.start()
        if postgres.started_here:
            started.append(_Started("postgres", postgres.stop))
        services = BenchServices(stack.paths, stack.kafka.bootstrap_servers, postgres)
        if with_connect:
            try:
                _start_connect(stack, started, progress)
                services.connect = stack.connect.client
                services.connect_pid = process.read_pid(stack.paths.pid("connect"))
            except StackError as error:
                services.connect_problem = str(error)
                progress(f"Kafka Connect is not available: {error}")
        services.started = [item.name for item in started]
        yield services
    finally:
        for item in reversed(started):
            progress(f"stopping {item.name}")
            with contextlib.suppress(Exception):
                item.stop()


def _start_connect(
    stack: LocalStack, started: list[_Started], progress: Callable[[str], None]
) -> None:
    progress("adding the JDBC sink to Kafka Connect's plugins")
    jdbc.install_plugins(stack.paths)
    connect_running = stack.connect.status().state == "running"
    if connect_running and not _has_jdbc_sink(stack.connect.client):
        # Plugins are found when the worker starts: restart it to load ours.
        progress("restarting Kafka Connect to load the JDBC sink")
        stack.connect.stop()
        connect_running = False
    if stack.s3.status().state != "running":
        progress("starting the S3 endpoint (the Connect worker's archive needs it)")
        stack.s3.start()
        started.append(_Started("s3proxy", stack.s3.stop))
    if not connect_running:
        progress("starting Kafka Connect")
        stack.connect.start()
        started.append(_Started("connect", stack.connect.stop))
    if not _has_jdbc_sink(stack.connect.client):
        raise StackError(
            f"Kafka Connect does not list {jdbc.JDBC_CONNECTOR_CLASS}; see "
            f"{stack.paths.log('connect')}"
        )


def _has_jdbc_sink(client: ConnectClient) -> bool:
    return jdbc.JDBC_CONNECTOR_CLASS in client.connector_plugins()


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_peak_rss_mb(pid: int) -> float | None:
    """The peak resident memory (VmHWM) of a running process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None
