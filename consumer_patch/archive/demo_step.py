"""The demo's last step: find this run's dead letters in the S3 archive."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from consumer_patch.archive.query import UNIQUE_VIEW, ArchiveDatabase
from consumer_patch.cli.output import table
from consumer_patch.connector import (
    DEFAULT_ARCHIVE_LAYOUT,
    ArchiveLayout,
)

POLL_SECONDS = 1.0
SHOWN_COLUMNS = (
    "dt",
    "failed_at",
    "error_type",
    "correlation_id",
    "original_partition",
    "original_offset",
)

_QUERY = f"""
SELECT *
FROM {UNIQUE_VIEW}
WHERE (CAST(? AS VARCHAR) IS NULL OR failed_at >= ?)
  AND (CAST(? AS VARCHAR) IS NULL OR original_topic = ?)
ORDER BY failed_at, original_partition, original_offset
"""


def archived_dead_letters(
    environment: Mapping[str, str],
    wait_seconds: float,
    *,
    failed_since: datetime | None = None,
    original_topic: str | None = None,
    expected: int = 1,
    layout: ArchiveLayout = DEFAULT_ARCHIVE_LAYOUT,
) -> list[dict[str, Any]]:
    """Dead letters in the archive, waiting until ``expected`` of them are there.

    Args:
        environment: ``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``,
            ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` and ``ARCHIVE_BUCKET``,
            as ``LocalStack.up()`` returns them.
        wait_seconds: How long to wait for the sink to store them.
        failed_since: Only dead letters whose ``failed_at`` is at or after it.
        original_topic: Only dead letters of records from this topic.
        expected: Stop waiting once this many are archived.
        layout: Where the archive lives in the bucket.

    Returns:
        One dict per dead letter (the archive table's columns and ``dt``),
        oldest first; fewer than ``expected`` when the wait ran out.

    Note:
        The sink stores what it buffered each time Connect commits its
        offsets (every few seconds on the local stack), so a dead letter
        appears in the archive shortly after it reached the topic.
    """
    since = _rfc3339(failed_since) if failed_since else None
    parameters = [since, since, original_topic, original_topic]
    deadline = time.monotonic() + wait_seconds
    with ArchiveDatabase.from_environment(environment, layout) as database:
        while True:
            database.refresh()
            letters = database.execute(_QUERY, parameters).as_dicts()
            if len(letters) >= expected or time.monotonic() >= deadline:
                return letters
            time.sleep(POLL_SECONDS)


def print_archived_dead_letters(
    letters: list[dict[str, Any]], limit: int = 10, out: TextIO | None = None
) -> None:
    """Print how many dead letters the archive holds and the first ``limit``."""
    stream = out or sys.stdout
    days = sorted({str(letter["dt"]) for letter in letters})
    print(
        f"\n{len(letters)} dead letters found in the S3 archive "
        f"(view {UNIQUE_VIEW}, days {', '.join(days) or 'none'}):",
        file=stream,
    )
    table(letters[:limit], SHOWN_COLUMNS, out=stream)
    if len(letters) > limit:
        print(f"... and {len(letters) - limit} more", file=stream)


def _rfc3339(moment: datetime) -> str:
    # The envelope's failed_at format, so that text order is time order.
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
