"""Exact statistics: latency percentiles of raw samples, medians of repeats with their spread, ratios."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The percentiles reported per load level (fractions), with their row labels.
LATENCY_PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks; NaN for no samples."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside 0..100")
    if len(samples) == 0:
        return math.nan
    return float(np.percentile(np.asarray(samples, dtype=float), q, method="linear"))


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """p50..p99.9, max, mean and count of one run's latencies."""
    summary = {label: percentile(latencies_ms, q) for label, q in LATENCY_PERCENTILES}
    summary["max"] = float(max(latencies_ms)) if len(latencies_ms) else math.nan
    summary["mean"] = float(np.mean(latencies_ms)) if len(latencies_ms) else math.nan
    summary["count"] = float(len(latencies_ms))
    return summary


@dataclass(frozen=True)
class Spread:
    """The median of repeated measurements and how far apart they were."""

    median: float
    low: float
    high: float
    n: int


def spread(values: Sequence[float]) -> Spread:
    """Median with min-max of the finite values (NaN median when none is finite)."""
    finite = [float(value) for value in values if value is not None and math.isfinite(value)]
    if not finite:
        return Spread(math.nan, math.nan, math.nan, 0)
    return Spread(float(np.median(finite)), min(finite), max(finite), len(finite))


def ratio(value: float, baseline: float) -> float:
    """value / baseline, NaN where either is missing or the baseline is zero."""
    if any(x is None or not math.isfinite(x) for x in (value, baseline)) or baseline == 0:
        return math.nan
    return value / baseline
