"""Is a measurement stable? perf_analyzer's rule: the last 3 windows' throughput and p99 agree within 10%."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

STABLE_WINDOWS = 3
STABLE_TOLERANCE = 0.10


MIN_WINDOW_REQUESTS = 30  # fewer requests than this per window make a p99 too noisy to compare
MAX_STRETCH = 4.0  # a low-rate run is lengthened at most this much to fill its windows


def window_plan(rate: float, duration_s: float, windows: int = 5) -> tuple[float, float]:
    """(duration, window length) so each window expects at least MIN_WINDOW_REQUESTS at this rate."""
    window_s = max(duration_s / windows, MIN_WINDOW_REQUESTS / rate)
    duration = min(max(duration_s, STABLE_WINDOWS * window_s), MAX_STRETCH * duration_s)
    return duration, window_s


@dataclass(frozen=True)
class Window:
    start_s: float
    throughput: float  # successful completions per second inside the window
    p99_ms: float  # of the requests scheduled inside the window
    requests: int


def windows_of(
    scheduled_s: Sequence[float],
    latencies_ms: Sequence[float],
    ok: Sequence[bool],
    start_s: float,
    end_s: float,
    window_s: float,
) -> list[Window]:
    """Cut one open-loop run into consecutive ``window_s`` windows (a trailing partial one is dropped)."""
    scheduled = np.asarray(scheduled_s, dtype=float)
    latency = np.asarray(latencies_ms, dtype=float)
    success = np.asarray(ok, dtype=bool)
    completed = scheduled + latency / 1000.0
    windows = []
    count = int((end_s - start_s) / window_s + 1e-9)  # 12.7 / (12.7 / 3) must give 3, not 2.999...
    for index in range(count):
        low, high = start_s + index * window_s, start_s + (index + 1) * window_s
        done_inside = success & (completed >= low) & (completed < high)
        sent_inside = (scheduled >= low) & (scheduled < high)
        inside = latency[sent_inside & success]
        windows.append(
            Window(
                start_s=low,
                throughput=float(np.count_nonzero(done_inside)) / window_s,
                p99_ms=float(np.percentile(inside, 99)) if inside.size else float("nan"),
                requests=int(np.count_nonzero(sent_inside)),
            )
        )
    return windows


def within(values: Sequence[float], tolerance: float) -> bool:
    """Every value within ``tolerance`` (relative) of their mean; False for NaN or an all-zero set."""
    array = np.asarray(values, dtype=float)
    if array.size == 0 or not np.all(np.isfinite(array)):
        return False
    mean = float(array.mean())
    if mean == 0:
        return bool(np.all(array == 0))
    return bool(np.all(np.abs(array - mean) <= tolerance * abs(mean)))


@dataclass(frozen=True)
class Stability:
    stable: bool
    windows: list[Window]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"stable": self.stable, "reason": self.reason, "windows": [asdict(w) for w in self.windows]}


def assess(
    windows: Sequence[Window], count: int = STABLE_WINDOWS, tolerance: float = STABLE_TOLERANCE
) -> Stability:
    if len(windows) < count:
        return Stability(False, list(windows), f"only {len(windows)} window(s), {count} needed")
    last = windows[-count:]
    throughput_ok = within([w.throughput for w in last], tolerance)
    p99_ok = within([w.p99_ms for w in last], tolerance)
    if throughput_ok and p99_ok:
        return Stability(True, list(windows), f"last {count} windows within {tolerance:.0%}")
    unstable = [name for name, ok in (("throughput", throughput_ok), ("p99", p99_ok)) if not ok]
    return Stability(
        False,
        list(windows),
        f"last {count} windows differ by more than {tolerance:.0%} in {', '.join(unstable)}",
    )
