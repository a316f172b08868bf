"""What a serving framework costs: each variant that ``hosts`` another's predictor against that variant.

A framework variant (Ray Serve, BentoML, MLServer) serves the same artifact in the same session as the variant
it hosts, on the same core budget, so every difference between the two is the framework: its proxy hops, its
request handling, its processes. The figures are the table's own medians from the same run: the c1 median
latency difference (the framework's fixed cost per request, before any queueing), the throughput ratio at the
highest closed-loop level measured (its cost under load), the service RSS at that level and the start-up time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.report.table import Row, Table

LATENCY_KEY = "c1.p50"
OVERHEAD_TEXT = (
    "Each framework variant against the variant whose predictor it serves (the same artifact, session and "
    "core budget, measured in this run): what the framework adds per request at c1, what it keeps of the "
    "throughput under load, its memory and its start-up."
)
READY_KEY = "startup.ready_s"


@dataclass(frozen=True)
class Overhead:
    variant: str
    hosted: str  # the variant whose predictor it serves
    c1_p50_ms: float
    hosted_c1_p50_ms: float
    users: int | None  # the closed-loop level of the throughput and RSS figures
    rps: float
    hosted_rps: float
    rss_mb: float
    hosted_rss_mb: float
    ready_s: float
    hosted_ready_s: float

    @property
    def c1_delta_ms(self) -> float:
        return self.c1_p50_ms - self.hosted_c1_p50_ms

    @property
    def throughput_ratio(self) -> float:
        return self.rps / self.hosted_rps if self.hosted_rps > 0 else math.nan

    def sentence(self) -> str:
        """Its overhead in one clause, for its verdict line."""
        level = f"c{self.users}" if self.users is not None else "the top level"
        return (
            f"the framework over {self.hosted}: {_signed(self.c1_delta_ms, 'ms', 'c1 p50')},"
            f" {_ratio(self.throughput_ratio, f'{level} req/s')}, RSS {_number(self.rss_mb)} vs"
            f" {_number(self.hosted_rss_mb)} MB, ready {_number(self.ready_s)} vs"
            f" {_number(self.hosted_ready_s)} s"
        )

    def cells(self) -> list[str]:
        """The row of the overhead table (see ``HEADER``)."""
        return [
            self.variant,
            self.hosted,
            _signed(self.c1_delta_ms, "ms", f"{_number(self.c1_p50_ms)} vs {_number(self.hosted_c1_p50_ms)}"),
            _ratio(self.throughput_ratio, f"{_number(self.rps)} vs {_number(self.hosted_rps)} req/s"),
            f"{_number(self.rss_mb)} vs {_number(self.hosted_rss_mb)} MB",
            f"{_number(self.ready_s)} vs {_number(self.hosted_ready_s)} s",
        ]


def header(overheads: list[Overhead]) -> list[str]:
    users = next((overhead.users for overhead in overheads if overhead.users is not None), None)
    level = f"c{users}" if users is not None else "highest level"
    return [
        "variant",
        "hosts",
        "c1 p50 latency, difference",
        f"{level} throughput, ratio",
        f"{level} service RSS",
        "start to ready",
    ]


def framework_overheads(table: Table) -> list[Overhead]:
    """One entry per variant of the run that hosts another variant of the same run, in run order."""
    hosts = _hosts(table.run)
    rows = {row.key: row for row in table.rows}
    users = _top_level(table, rows)
    throughput = f"c{users}.rps" if users is not None else None
    rss = f"c{users}.rss_peak_mb" if users is not None else None
    return [
        Overhead(
            variant=variant,
            hosted=hosted,
            c1_p50_ms=_median(rows, LATENCY_KEY, variant),
            hosted_c1_p50_ms=_median(rows, LATENCY_KEY, hosted),
            users=users,
            rps=_median(rows, throughput, variant),
            hosted_rps=_median(rows, throughput, hosted),
            rss_mb=_median(rows, rss, variant),
            hosted_rss_mb=_median(rows, rss, hosted),
            ready_s=_median(rows, READY_KEY, variant),
            hosted_ready_s=_median(rows, READY_KEY, hosted),
        )
        for variant in table.variants
        if (hosted := hosts.get(variant)) is not None and hosted in table.variants
    ]


def overhead_json(overheads: list[Overhead]) -> list[dict[str, Any]]:
    return [
        {
            "variant": overhead.variant,
            "hosts": overhead.hosted,
            "c1_p50_delta_ms": _finite_or_none(overhead.c1_delta_ms),
            "users": overhead.users,
            "throughput_ratio": _finite_or_none(overhead.throughput_ratio),
            "rss_mb": _finite_or_none(overhead.rss_mb),
            "hosted_rss_mb": _finite_or_none(overhead.hosted_rss_mb),
            "ready_s": _finite_or_none(overhead.ready_s),
            "hosted_ready_s": _finite_or_none(overhead.hosted_ready_s),
        }
        for overhead in overheads
    ]


def _hosts(run: dict[str, Any]) -> dict[str, str]:
    return {
        entry["name"]: entry["hosts"]
        for entry in run.get("variants", [])
        if isinstance(entry, dict) and entry.get("hosts")
    }


def _top_level(table: Table, rows: dict[str, Row]) -> int | None:
    levels = table.run.get("profile", {}).get("concurrency_levels", [])
    measured = [users for users in levels if f"c{users}.rps" in rows]
    return max(measured) if measured else None


def _median(rows: dict[str, Row], key: str | None, variant: str) -> float:
    row = rows.get(key) if key is not None else None
    cell = row.cells.get(variant) if row is not None else None
    return cell.median if cell is not None else math.nan


def _finite_or_none(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _signed(value: float, unit: str, detail: str) -> str:
    if not math.isfinite(value):
        return f"n/a ({detail})"
    return f"{value:+.1f} {unit} ({detail})"


def _ratio(value: float, detail: str) -> str:
    if not math.isfinite(value):
        return f"n/a ({detail})"
    return f"x{value:.2f} ({detail})"
