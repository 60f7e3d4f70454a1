"""Medians, spreads and paired ratios of the measured samples, with targets."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.runner import Sample


@dataclass(frozen=True)
class Target:
    """A bound a measured value must meet: at least (ratios) or at most."""

    bound: float
    at_least: bool = True

    def met(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound

    def __str__(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.bound:g}"


@dataclass(frozen=True)
class Spread:
    """Median and range of some values."""

    median: float
    low: float
    high: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no values to summarise")
        return cls(statistics.median(values), min(values), max(values), tuple(values))

    def as_json(self, digits: int = 3) -> dict[str, Any]:
        return {
            "median": round(self.median, digits),
            "min": round(self.low, digits),
            "max": round(self.high, digits),
            "values": [round(value, digits) for value in self.values],
        }


@dataclass(frozen=True)
class ComparisonSpec:
    key: str
    title: str
    numerator: str
    denominator: str
    # None for a comparison shown for context, with no target of its own.
    target: Target | None


@dataclass(frozen=True)
class ComparisonResult:
    spec: ComparisonSpec
    numerator: Spread
    denominator: Spread
    ratio: Spread

    @property
    def met(self) -> bool | None:
        target = self.spec.target
        return None if target is None else target.met(self.ratio.median)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.spec.key,
            "title": self.spec.title,
            "numerator": self.spec.numerator,
            "denominator": self.spec.denominator,
            "numerator_rate": self.numerator.as_json(1),
            "denominator_rate": self.denominator.as_json(1),
            "ratio": self.ratio.as_json(),
            "target": None if self.spec.target is None else str(self.spec.target),
            "met": self.met,
        }


def compare(spec: ComparisonSpec, samples: Sequence[Sample]) -> ComparisonResult:
    """Rates of both sides and the ratio of each round's pair.

    Raises:
        ValueError: a side has no sample, or the rounds do not pair up.
    """
    top = {s.round: s.rate for s in samples if s.side == spec.numerator}
    bottom = {s.round: s.rate for s in samples if s.side == spec.denominator}
    rounds = sorted(set(top) & set(bottom))
    if not rounds:
        raise ValueError(f"{spec.key}: no round measured both sides")
    ratios = [top[n] / bottom[n] for n in rounds if bottom[n] > 0]
    return ComparisonResult(
        spec,
        Spread.of([top[n] for n in rounds]),
        Spread.of([bottom[n] for n in rounds]),
        Spread.of(ratios),
    )
