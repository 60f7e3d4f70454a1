"""PostgreSQL storage of agent actions.

Note:
    A batch is written in one transaction with ``ON CONFLICT DO NOTHING`` on
    the source coordinates, so writing the same records again (redelivery
    after a crash or a rebalance) stores each action exactly once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from importlib import resources

import asyncpg

from consumer_patch.records import ActionRecord

logger = logging.getLogger(__name__)

INSERT_BATCH = """
INSERT INTO agent_actions (
    correlation_id, agent_name, action_type, action_name, action_details,
    debug_mode, duration_ms, "timestamp",
    source_topic, source_partition, source_offset
)
SELECT c, a, t, n, d::jsonb, m, ms, ts, st, sp, so
FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
    $6::boolean[], $7::bigint[], $8::timestamptz[],
    $9::text[], $10::integer[], $11::bigint[]
) AS batch(c, a, t, n, d, m, ms, ts, st, sp, so)
ON CONFLICT ON CONSTRAINT agent_actions_source_record_key DO NOTHING
"""

CONNECT_TIMEOUT_SECONDS = 10.0


def schema_sql() -> str:
    return (
        resources.files("consumer_patch").joinpath("sql/agent_actions.sql").read_text()
    )


async def apply_schema(dsn: str) -> None:
    """Create the ``agent_actions`` table and its constraint if missing."""
    connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        await connection.execute(schema_sql())
    finally:
        await connection.close()


class PostgresWriter:
    """Writes batches of agent actions to ``agent_actions``.

    It is the consumer's default handler: ``await writer(records)`` stores the
    batch or raises, and ``await writer.is_available()`` is the health probe
    the consumer's outage guard uses to tell "this record is bad" from
    "the database is down".
    """

    def __init__(self, dsn: str, pool_size: int = 4):
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        """Open the pool and check the server answers (fail fast at start-up)."""
        pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=self._pool_size,
            timeout=CONNECT_TIMEOUT_SECONDS,
        )
        try:
            async with pool.acquire() as connection:
                await connection.fetchval("SELECT 1")
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresWriter.start() has not been awaited")
        return self._pool

    async def __call__(self, records: Sequence[ActionRecord]) -> None:
        columns = _columns(records)
        async with self._require_pool().acquire() as connection:
            await connection.execute(INSERT_BATCH, *columns)

    async def is_available(self) -> bool:
        try:
            async with self._require_pool().acquire() as connection:
                await connection.fetchval("SELECT 1")
        except Exception as error:
            logger.warning("postgres health probe failed: %s", type(error).__name__)
            return False
        return True


def _columns(records: Sequence[ActionRecord]) -> list[list[object]]:
    rows: list[list[object]] = [[] for _ in range(11)]
    for record in records:
        action = record.action
        details = action.get("action_details")
        values: tuple[object, ...] = (
            action["correlation_id"],
            action["agent_name"],
            action["action_type"],
            action["action_name"],
            None if details is None else json.dumps(details, ensure_ascii=False),
            bool(action.get("debug_mode", False)),
            action.get("duration_ms"),
            record.timestamp,
            record.topic,
            record.partition,
            record.offset,
        )
        for column, value in zip(rows, values, strict=True):
            column.append(value)
    return rows
