"""Names of the Kafka record headers this package reads and writes.

Headers of our own start with ``agent-dlq.`` so they never collide with an
application's. On a dead-letter record they let tools filter without parsing
the JSON value; on a source record (after a replay or a redrive) they carry
the retry count and point at the dead letter it came from.
"""

from __future__ import annotations

PREFIX = "agent-dlq."

# On dead-letter records.
ERROR_TYPE = "agent-dlq.error-type"
ERROR_CATEGORY = "agent-dlq.error-category"
ORIGINAL_TOPIC = "agent-dlq.original-topic"
ORIGINAL_PARTITION = "agent-dlq.original-partition"
ORIGINAL_OFFSET = "agent-dlq.original-offset"
DEAD_LETTER_ID = "agent-dlq.dead-letter-id"

# On dead-letter records and on replayed or redriven source records: the
# number of processing attempts already made on the record.
RETRY_COUNT = "agent-dlq.retry-count"

# On replayed or redriven source records: "<dlq topic>-<partition>@<offset>".
REPLAYED_FROM = "agent-dlq.replayed-from"

# Where a correlation id is looked for when the value cannot be read.
CORRELATION_ID_HEADERS = ("correlation_id", "correlation-id", "x-correlation-id")


def is_ours(name: str) -> bool:
    return name.startswith(PREFIX)
