"""The plot: records per second against poison ratio and against batch size."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from bench.runner import Sample

# One point per setting: the median of its rounds, with the range as a bar.
Points = tuple[list[float], list[float], list[float], list[float]]


def points(samples: Sequence[Sample], sweep: str, key: str, **match: object) -> Points:
    rates: dict[float, list[float]] = defaultdict(list)
    for sample in samples:
        params = sample.params
        if params.get("sweep") != sweep:
            continue
        if any(params.get(name) != value for name, value in match.items()):
            continue
        rates[float(params[key])].append(sample.rate)
    xs = sorted(rates)
    medians = [statistics.median(rates[x]) for x in xs]
    below = [m - min(rates[x]) for x, m in zip(xs, medians, strict=True)]
    above = [max(rates[x]) - m for x, m in zip(xs, medians, strict=True)]
    return xs, medians, below, above


def plot(samples: Sequence[Sample], path: Path, caption: str) -> None:
    """Write the two panels to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (by_poison, by_batch) = pyplot.subplots(1, 2, figsize=(11, 4.4))

    xs, medians, below, above = points(samples, "poison_ratio", "poison_ratio")
    labels = [f"{x * 100:g} %" for x in xs]
    positions = list(range(len(xs)))
    by_poison.errorbar(
        positions, medians, yerr=[below, above], marker="o", capsize=4,
        label="our consumer",
    )  # fmt: skip
    by_poison.set_xticks(positions, labels)
    by_poison.set_xlabel("poison records in the stream (batch size 500)")
    by_poison.set_ylabel("records / s")
    by_poison.set_title("rate against poison ratio")

    for consumer, label in (("ours", "our consumer"), ("raw", "raw aiokafka loop")):
        xs, medians, below, above = points(
            samples, "batch_size", "batch_size", consumer=consumer
        )
        by_batch.errorbar(
            xs, medians, yerr=[below, above], marker="o", capsize=4, label=label
        )
    by_batch.set_xscale("log")
    sizes = sorted(
        {
            float(s.params["batch_size"])
            for s in samples
            if s.params.get("sweep") == "batch_size"
        }
    )
    by_batch.set_xticks(sizes, [f"{size:g}" for size in sizes])
    by_batch.minorticks_off()
    by_batch.set_xlabel("batch size (clean stream)")
    by_batch.set_ylabel("records / s")
    by_batch.set_title("rate against batch size")

    for axes in (by_poison, by_batch):
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.suptitle(caption, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
