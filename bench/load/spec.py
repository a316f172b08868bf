"""What the parent hands the load child process, and the helpers both load modes share.

Kept apart from ``driver.py`` (the parent and the closed-loop child) and ``openloop_measure.py`` (the
open-loop child) so neither imports the other.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENERATOR_SATURATION_PERCENT = 90.0  # Locust's gevent loop uses one core; above this it may limit the load
MAX_IN_FLIGHT = 256  # open mode: default cap on outstanding requests


@dataclass(frozen=True)
class LoadSpec:
    host: str
    predict_path: str
    payload_image: str
    payload_format: str
    users: int
    warmup_s: float
    duration_s: float
    max_requests: int | None = None
    request_timeout_s: float = 60.0
    mode: str = "closed"
    rate: float | None = None  # open mode: offered requests/s (Poisson)
    seed: int = 0  # open mode: the schedule's random seed
    max_in_flight: int = MAX_IN_FLIGHT  # open mode: cap on outstanding requests
    window_s: float | None = None  # open mode: stability window (default: a fifth of the duration)
    oip_input: str | None = None  # the OIP payload formats: the input the image is sent in


def cpu_percent(before: Any, after: Any, elapsed: float) -> float:
    busy = (after.user - before.user) + (after.system - before.system)
    return 100.0 * busy / max(elapsed, 1e-9)


def write_final_stats(environment: Any, out_dir: Path) -> None:
    """Locust's own summary files (CSV and JSON) as they stand at the end of the run."""
    from locust import stats as locust_stats

    final = locust_stats.StatsCSV(environment, locust_stats.PERCENTILES_TO_REPORT)
    for suffix, write in (("stats", final.requests_csv), ("failures", final.failures_csv)):
        with (out_dir / f"locust_{suffix}.csv").open("w", newline="") as handle:
            write(csv.writer(handle))
    locust_stats.save_stats_json(environment.stats, str(out_dir / "locust"))
