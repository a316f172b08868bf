"""Read the analysis phase's raw files of a run directory (ceiling, open loop, SLO search, sweep, profile).

Shared by the report's analysis sections and plots, so both read the raw data the same way.
"""

from __future__ import annotations

import math
from typing import Any

from bench.report.aggregate import RawRun
from bench.results import is_not_measured, read_json
from bench.stats import spread

QUEUEING_MODEL = "M/D/c"  # one image size through one model: service time is close to deterministic


def ceilings(raw: RawRun, variant: str) -> list[dict[str, Any]]:
    """Ceiling results over repeats (``not_measured`` dicts included, so the reason can be shown)."""
    found = []
    for repeat in range(raw.profile["repeats"]):
        path = raw.dir.ceiling_dir(variant, repeat) / "ceiling.json"
        if path.is_file():
            found.append(read_json(path))
    return found


def open_runs(raw: RawRun, variant: str) -> list[dict[str, Any]]:
    """Open-loop runs at the common rate: window, corrected latencies and per-request records."""
    found = []
    for repeat in range(raw.profile.get("open_runs", 0)):
        folder = raw.dir.openloop_dir(variant, repeat)
        if (folder / "window.json").is_file():
            found.append(
                {
                    "window": read_json(folder / "window.json"),
                    "latencies": read_json(folder / "latencies.json"),
                    "requests": read_json(folder / "requests.json"),
                }
            )
    return found


def slo_search(raw: RawRun, variant: str) -> dict[str, Any] | None:
    path = raw.dir.slo_dir(variant) / "search.json"
    return read_json(path) if path.is_file() else None


def analysis(raw: RawRun, variant: str, kind: str) -> dict[str, Any] | None:
    """``sweep`` or ``profile`` result, or None when that job did not run."""
    path = raw.dir.analysis_dir(variant) / f"{kind}.json"
    return read_json(path) if path.is_file() else None


def closed_best_per_repeat(raw: RawRun, variant: str) -> list[float]:
    """Per repeat: the best closed-loop throughput over the concurrency levels (the saturated figure)."""
    best = []
    for repeat in range(raw.profile["repeats"]):
        rates = []
        for users in raw.profile["concurrency_levels"]:
            path = raw.dir.load_dir(variant, repeat, users) / "window.json"
            if path.is_file():
                window = read_json(path)
                rates.append(window["successes"] / max(window["duration_s"], 1e-9))
        if rates:
            best.append(max(rates))
    return best


def service_time_ms(raw: RawRun, variant: str) -> float:
    """Mean latency at concurrency 1 (closed loop, over HTTP), median over repeats: the queueing model's S."""
    levels = raw.levels(variant, 1) if 1 in raw.profile["concurrency_levels"] else []
    means = [sum(level["latencies"]) / len(level["latencies"]) for level in levels if level["latencies"]]
    return spread(means).median


def servers(raw: RawRun, variant: str) -> int:
    """Requests served at once: workers x inference concurrency from /info (1 when unknown)."""
    data = raw.measurement(variant, "info")
    if data is None or is_not_measured(data) or not isinstance(data.get("info"), dict):
        return 1
    info = data["info"]
    try:
        return max(1, int(info.get("workers", 1)) * int(info.get("inference_concurrency", 1)))
    except (TypeError, ValueError):
        return 1


def open_rate(raw: RawRun) -> dict[str, Any] | None:
    return raw.run.get("open_loop")


def finite(value: float) -> bool:
    return value is not None and math.isfinite(value)
