"""The open-loop schedule: seeded Poisson arrivals, and how closely the generator kept to it.

Pure functions (no gevent, no network) so the schedule and the lag verdict are testable on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

LATE_AFTER_MS = 10.0  # a request sent more than this after its scheduled time counts as late
BEHIND_FRACTION = 0.02  # more than this share of late requests: the generator fell behind its schedule


def poisson_arrivals(rate: float, horizon_s: float, seed: int) -> np.ndarray:
    """Arrival offsets (seconds from the start, sorted, all < ``horizon_s``) of a Poisson process."""
    if rate <= 0 or horizon_s <= 0:
        raise ValueError(f"rate and horizon must be positive, got rate={rate}, horizon={horizon_s}")
    rng = np.random.default_rng(seed)
    chunk = max(16, int(rate * horizon_s * 1.2) + 16)
    offsets = np.cumsum(rng.exponential(1.0 / rate, size=chunk))
    while offsets[-1] < horizon_s:  # rare: the first chunk fell short of the horizon
        more = offsets[-1] + np.cumsum(rng.exponential(1.0 / rate, size=chunk))
        offsets = np.concatenate([offsets, more])
    return offsets[offsets < horizon_s]


def bounded_schedule(
    rate: float, warmup_s: float, duration_s: float, seed: int, max_measured: int | None
) -> np.ndarray:
    """Arrivals over warmup + measured window, cut so the measured window holds at most ``max_measured``."""
    offsets = poisson_arrivals(rate, warmup_s + duration_s, seed)
    if max_measured is None:
        return offsets
    measured = np.flatnonzero(offsets >= warmup_s)
    if len(measured) <= max_measured:
        return offsets
    return offsets[: measured[max_measured - 1] + 1]


@dataclass(frozen=True)
class Adherence:
    """How late requests left the generator against their schedule (perf_analyzer's delayed requests)."""

    requests: int
    late: int
    late_fraction: float
    capped: int  # waited for a free slot because max_in_flight requests were already outstanding
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    late_after_ms: float
    behind_schedule: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def adherence(
    send_lags_ms: Sequence[float],
    capped: int,
    late_after_ms: float = LATE_AFTER_MS,
    behind_fraction: float = BEHIND_FRACTION,
) -> Adherence:
    lags = np.asarray(send_lags_ms, dtype=float)
    if lags.size == 0:
        return Adherence(0, 0, 0.0, capped, 0.0, 0.0, 0.0, late_after_ms, capped > 0)
    late = int(np.count_nonzero(lags > late_after_ms))
    fraction = late / lags.size
    return Adherence(
        requests=int(lags.size),
        late=late,
        late_fraction=fraction,
        capped=capped,
        lag_p50_ms=float(np.percentile(lags, 50)),
        lag_p99_ms=float(np.percentile(lags, 99)),
        lag_max_ms=float(lags.max()),
        late_after_ms=late_after_ms,
        behind_schedule=fraction > behind_fraction or capped > 0,
    )
