"""Exact statistics: latency percentiles of raw samples, medians of repeats with their spread, ratios; CPU
steal between two readings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def relative_spread(summary: Spread) -> float:
    """(max - min) / median of the repeats: NaN for fewer than two or a zero median."""
    if summary.n < 2 or not math.isfinite(summary.median) or summary.median == 0:
        return math.nan
    return (summary.high - summary.low) / abs(summary.median)


@dataclass(frozen=True)
class Modes:
    """Two speeds in one sample: the medians of its low and high modes, the high mode's share, Ashman's D."""

    low: float
    high: float
    high_fraction: float
    separation: float


# Ashman's D > 2 separates two GIVEN groups; the least-variance split of ONE mode already scores 2.7 (a
# Gaussian) to 3.5 (a uniform), and 30 samples of one mode reach 5.2 at their 99th percentile; two speeds a
# factor 2 apart with 5% jitter score about 14.
BIMODAL_SEPARATION = 6.0
MINOR_MODE = 0.10  # a mode needs at least this share of the sample to count as a second speed


def two_modes(samples: Sequence[float]) -> Modes | None:
    """The best two-group split of log(samples) (Otsu: least within-group variance), when its modes are
    far apart (Ashman's D = sqrt(2) |m1 - m2| / sqrt(s1^2 + s2^2) > BIMODAL_SEPARATION) and the smaller
    holds at least MINOR_MODE of the sample; None otherwise (also below 20 positive samples)."""
    values = np.sort(np.log(np.asarray([v for v in samples if v > 0], dtype=float)))
    n = values.size
    if n < 20:
        return None
    sums, squares = np.cumsum(values), np.cumsum(values**2)
    split = np.arange(max(1, math.ceil(MINOR_MODE * n)), min(n - 1, math.floor((1 - MINOR_MODE) * n)) + 1)
    if split.size == 0:
        return None
    left_n, right_n = split, n - split
    left_mean, right_mean = sums[split - 1] / left_n, (sums[-1] - sums[split - 1]) / right_n
    left_var = np.maximum(squares[split - 1] / left_n - left_mean**2, 0.0)
    right_var = np.maximum((squares[-1] - squares[split - 1]) / right_n - right_mean**2, 0.0)
    best = int(np.argmin(left_n * left_var + right_n * right_var))
    spread_sq = left_var[best] + right_var[best]
    gap = right_mean[best] - left_mean[best]
    separation = math.inf if spread_sq == 0 else math.sqrt(2.0) * gap / math.sqrt(spread_sq)
    if not separation > BIMODAL_SEPARATION:
        return None
    cut = int(split[best])
    return Modes(
        float(np.exp(np.median(values[:cut]))),
        float(np.exp(np.median(values[cut:]))),
        (n - cut) / n,
        separation,
    )


def two_groups(values: Sequence[float]) -> tuple[list[float], list[float]] | None:
    """Repeats that cluster in two groups: split at the widest gap of the sorted values, each side at least
    two repeats, the gap at least twice the wider group's own range; None otherwise."""
    ordered = sorted(float(v) for v in values if math.isfinite(v))
    if len(ordered) < 4:
        return None
    gaps = [(ordered[i + 1] - ordered[i], i + 1) for i in range(1, len(ordered) - 2)]
    gap, cut = max(gaps)
    low, high = ordered[:cut], ordered[cut:]
    if gap <= 0 or gap < 2 * max(low[-1] - low[0], high[-1] - high[0]):
        return None
    return low, high


def steal_percent(before: Any, after: Any) -> float:
    """Percent of all CPUs' time the hypervisor ran someone else while this VM wanted it, between two
    ``psutil.cpu_times()`` readings (0 where the kernel reports no steal)."""
    total = sum(after) - sum(before)
    return 100.0 * (getattr(after, "steal", 0.0) - getattr(before, "steal", 0.0)) / max(total, 1e-9)
