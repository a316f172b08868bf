"""Startup rows: start to ready (median and p95 of the starts), first request warm and cold."""

from __future__ import annotations

from bench.records import RunRecords, VariantRecords
from bench.records.models import Startup
from bench.report.sections.common import missing
from bench.report.table import MEDIAN, Cell, Row

# field, label, unit, better, spread over, statistic
SPECS: list[tuple[str, str, str, str | None, str, str]] = [
    ("ready_s", "start to ready, median of starts", "s", "lower", "starts", MEDIAN),
    ("ready_s", "start to ready, p95 of starts", "s", "lower", "starts", "p95"),
    ("first_request_ms", "first request after ready (warmup on)", "ms", "lower", "starts", MEDIAN),
    ("cold_first_request_ms", "first request with warmup off (cold)", "ms", "lower", "cold starts", MEDIAN),
    ("warm_request_ms", "warm request after that cold start", "ms", "lower", "cold starts", MEDIAN),
]


def _cell(records: VariantRecords, name: str) -> Cell:
    data = records.startup
    if not isinstance(data, Startup) or not getattr(data, name):
        return missing(records, data)
    return Cell(values=list(getattr(data, name)))


def startup_section(run: RunRecords) -> list[Row]:
    return [
        Row(
            "startup",
            f"startup.{name}" + (f".{statistic}" if statistic != MEDIAN else ""),
            label,
            unit,
            better,
            {variant: _cell(records, name) for variant, records in run.variants.items()},
            spread_of=spread_of,
            statistic=statistic,
        )
        for name, label, unit, better, spread_of, statistic in SPECS
    ]
