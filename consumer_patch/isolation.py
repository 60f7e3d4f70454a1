"""Find the records of a batch that fail on their own, by bisection.

A failing batch is split in halves, and each half that fails is split again,
until the failing records stand alone. Halves that pass are stored whole, so
good neighbours are written normally. For k failing records in a batch of n
this takes at most about 2·k·log2(n) + 1 calls of the handler (one path of
depth log2(n) from the root down to each failing record, two calls per level),
and a single call when nothing fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from math import log2
from typing import TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


async def isolate(
    items: Sequence[Item],
    attempt: Callable[[Sequence[Item]], Awaitable[Outcome | None]],
) -> list[tuple[Item, Outcome]]:
    """Return each item that fails alone, with the outcome of its last attempt.

    Args:
        attempt: processes a slice and returns None on success, else the
            failure; it may retry internally (the consumer retries a lone
            record in place for transient errors).
    """
    if not items:
        return []
    outcome = await attempt(items)
    if outcome is None:
        return []
    if len(items) == 1:
        return [(items[0], outcome)]
    middle = len(items) // 2
    return await isolate(items[:middle], attempt) + await isolate(
        items[middle:], attempt
    )


def isolation_call_bound(failing: int, batch_size: int) -> float:
    """The most handler calls bisection may need: 2·k·log2(n) + 2."""
    return 2 * failing * log2(max(batch_size, 1)) + 2
