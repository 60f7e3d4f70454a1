"""Bisection finds exactly the failing records within 2·k·log2(n) + 2 calls."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from consumer_patch.isolation import isolate, isolation_call_bound


class CountingHandler:
    def __init__(self, poison: set[int]):
        self.poison = poison
        self.calls = 0

    async def __call__(self, items: Sequence[int]) -> str | None:
        self.calls += 1
        bad = self.poison.intersection(items)
        return f"poison {sorted(bad)}" if bad else None


CASES = [
    (size, failing)
    for size in (1, 2, 7, 64, 100, 500, 1000)
    for failing in (0, 1, 2, 5, 10)
    if failing <= size
]


@pytest.mark.parametrize(("size", "failing"), CASES)
async def test_isolates_exactly_the_failing_records_within_the_bound(
    size: int, failing: int
) -> None:
    rng = random.Random(size * 1000 + failing)
    poison = set(rng.sample(range(size), failing))
    handler = CountingHandler(poison)

    failed = await isolate(list(range(size)), handler)

    assert {item for item, _ in failed} == poison
    assert handler.calls <= isolation_call_bound(failing, size)


async def test_a_clean_batch_takes_one_call() -> None:
    handler = CountingHandler(set())

    assert await isolate(list(range(100)), handler) == []
    assert handler.calls == 1


async def test_failing_records_keep_their_order_and_outcome() -> None:
    handler = CountingHandler({3, 9})

    failed = await isolate(list(range(12)), handler)

    assert failed == [(3, "poison [3]"), (9, "poison [9]")]
