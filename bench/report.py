"""What a run found: the table people read, the JSON programs read, the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.runner import Sample
from bench.stats import ComparisonResult, Spread
from bench.suite import RSS_BATCH_SIZE, RSS_TARGET, IsolationResult

TOP_PROCESSES = 6


def machine() -> dict[str, Any]:
    """The machine the run is on: CPU, memory, load, and who else is busy."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(_memory_kib() / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiokafka": metadata.version("aiokafka"),
        "java": _java_version(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "busiest_processes": busiest_processes(),
    }


def source_state() -> dict[str, Any]:
    """The commit measured, and files of the package that differ from it."""

    def git(*arguments: str) -> str:
        result = subprocess.run(
            ["git", *arguments], capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    changed = git("status", "--porcelain", "--", "consumer_patch", "bench")
    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": changed.splitlines(),
    }


def busiest_processes() -> list[str]:
    """The processes using most CPU right now (``ps``), to tell a shared machine."""
    result = subprocess.run(
        ["ps", "-eo", "pcpu,rss,args", "--sort=-pcpu"],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.splitlines()[1 : TOP_PROCESSES + 1]
    return [" ".join(line.split())[:160] for line in lines]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_kib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _java_version() -> str:
    try:
        result = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, check=False
        )
    except OSError:
        return "not found"
    lines = result.stderr.splitlines()
    return lines[0] if lines else "unknown"


@dataclass(frozen=True)
class Findings:
    comparisons: list[ComparisonResult]
    isolation: list[IsolationResult]
    peak_rss_mb: float | None
    skipped: dict[str, str]
    samples: list[Sample]


def rate(value: float) -> str:
    return f"{value:,.0f}"


def spread_text(spread: Spread, digits: int = 0) -> str:
    if digits:
        return (
            f"{spread.median:.{digits}f} "
            f"({spread.low:.{digits}f}-{spread.high:.{digits}f})"
        )
    return f"{rate(spread.median)} ({rate(spread.low)}-{rate(spread.high)})"


def verdict(met: bool | None) -> str:
    if met is None:
        return ""
    return "met" if met else "MISSED"


def peak_rss_by_side(samples: Sequence[Sample]) -> dict[str, float]:
    peaks: dict[str, float] = {}
    for sample in samples:
        if sample.rss_mb is not None:
            peaks[sample.side] = max(peaks.get(sample.side, 0.0), sample.rss_mb)
    return peaks


def comparison_rows(findings: Findings) -> list[list[str]]:
    peaks = peak_rss_by_side(findings.samples)
    rows = []
    for result in findings.comparisons:
        spec = result.spec
        rows.append(
            [
                spec.title,
                spread_text(result.numerator),
                spread_text(result.denominator),
                spread_text(result.ratio, 2),
                "context" if spec.target is None else str(spec.target),
                verdict(result.met),
                f"{peaks.get(spec.numerator, 0):.0f} / "
                f"{peaks.get(spec.denominator, 0):.0f}",
            ]
        )
    return rows


COMPARISON_HEADER = [
    "comparison",
    "A records/s (min-max)",
    "B records/s (min-max)",
    "A/B (min-max)",
    "target",
    "",
    "peak RSS MB, A / B",
]
ISOLATION_HEADER = ["poison k", "batch n", "batches", "max calls", "mean", "bound", ""]


def isolation_rows(findings: Findings) -> list[list[str]]:
    return [
        [
            str(item.poison),
            str(item.batch_size),
            str(len(item.calls)),
            str(max(item.calls)),
            f"{sum(item.calls) / len(item.calls):.1f}",
            f"{item.bound:.1f}",
            verdict(item.met),
        ]
        for item in findings.isolation
    ]


def rss_line(findings: Findings) -> str:
    if findings.peak_rss_mb is None:
        return f"our consumer's peak RSS at batch size {RSS_BATCH_SIZE}: not measured"
    met = RSS_TARGET.met(findings.peak_rss_mb)
    return (
        f"our consumer's peak RSS at batch size {RSS_BATCH_SIZE}: "
        f"{findings.peak_rss_mb:.0f} MB (target {RSS_TARGET} MB) {verdict(met)}"
    )


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(row[column]) for row in [header, *rows])
        for column in range(len(header))
    ]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))
    ]
    lines.append("  ".join("-" * width for width in widths))
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_text(findings: Findings) -> str:
    parts = [text_table(COMPARISON_HEADER, comparison_rows(findings))]
    if findings.isolation:
        parts.append(
            "handler calls to isolate k refused records in a batch of n "
            "(bound 2·k·log2(n) + 2)\n"
            + text_table(ISOLATION_HEADER, isolation_rows(findings))
        )
    parts.append(rss_line(findings))
    for key, reason in findings.skipped.items():
        parts.append(f"skipped {key}: {reason}")
    return "\n\n".join(parts)


def render_markdown(findings: Findings) -> str:
    parts = [markdown_table(COMPARISON_HEADER, comparison_rows(findings))]
    if findings.isolation:
        parts.append(markdown_table(ISOLATION_HEADER, isolation_rows(findings)))
    parts.append(rss_line(findings))
    for key, reason in findings.skipped.items():
        parts.append(f"Skipped {key}: {reason}")
    return "\n\n".join(parts) + "\n"


def write_json(path: Path, findings: Findings, context: dict[str, Any]) -> None:
    body = {
        **context,
        "comparisons": [result.as_json() for result in findings.comparisons],
        "isolation": [item.as_json() for item in findings.isolation],
        "memory": {
            "peak_rss_mb": (
                round(findings.peak_rss_mb, 1) if findings.peak_rss_mb else None
            ),
            "batch_size": RSS_BATCH_SIZE,
            "target": f"{RSS_TARGET} MB",
            "met": (
                RSS_TARGET.met(findings.peak_rss_mb)
                if findings.peak_rss_mb is not None
                else None
            ),
        },
        "skipped": findings.skipped,
        "samples": [sample.as_json() for sample in findings.samples],
    }
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
