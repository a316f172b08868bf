"""Closed-loop rows: per concurrency level, throughput, latency percentiles, failures, bytes, resources."""

from __future__ import annotations

from pathlib import Path

from bench.records import RunRecords, VariantRecords
from bench.records.derived import level_metrics
from bench.records.models import LoadLevel
from bench.report.flags import FlagCode, warning
from bench.report.sections.common import RowSpec, missing, spec_rows
from bench.report.table import Cell, Row
from bench.stats import LATENCY_PERCENTILES

METRICS: list[RowSpec] = [
    ("rps", "successful requests/s", "req/s", "higher"),
    *[(label, f"latency {label}", "ms", "lower") for label, _ in LATENCY_PERCENTILES],
    ("max", "latency max", "ms", "lower"),
    ("failures", "failed requests", "count", "lower"),
    ("sent_mb_s", "request bytes sent", "MB/s", "higher"),
    ("received_kb_s", "response bytes received", "kB/s", None),
    ("cpu_mean", "service CPU mean (100 = 1 core)", "%", None),
    ("cpu_peak", "service CPU peak", "%", None),
    ("rss_mean_mb", "service RSS mean (process tree)", "MB", "lower"),
    ("rss_peak_mb", "service RSS peak (process tree)", "MB", "lower"),
    ("generator_cpu", "load generator CPU (its own core)", "%", None),
]
SATURATED = "generator saturated its core: throughput may be understated"


def closed_loop_section(run: RunRecords) -> list[Row]:
    profile = run.info.profile
    payloads = run.info.payloads
    payload = Path(next(iter(payloads.values())).file).name if payloads else "?"
    measure = (
        f"{profile.requests_per_level} requests"
        if profile.requests_per_level
        else f"{profile.duration_s:g} s"
    )
    rows = []
    for users in profile.concurrency_levels:
        section = f"closed loop, concurrency {users} ({payload}, {measure} per repeat, warmup excluded)"
        specs = [(f"c{users}.{key}", label, unit, better) for key, label, unit, better in METRICS]
        metrics = {
            name: [level_metrics(level) for level in records.at(users)]
            for name, records in run.variants.items()
        }

        def cell(records: VariantRecords, key: str, users: int = users, metrics: dict = metrics) -> Cell:
            return _level_cell(records, records.at(users), metrics[records.name], key.split(".", 1)[1])

        rows += spec_rows(run, section, specs, cell, "repeats")
    return rows


def _level_cell(
    records: VariantRecords, levels: list[LoadLevel], metrics: list[dict[str, float]], key: str
) -> Cell:
    """One metric of one concurrency level over the repeats, with the flags a reader must see."""
    if not levels:
        return missing(records)
    values = [figures[key] for figures in metrics if key in figures]
    if not values:  # resource rows of a runner that cannot sample
        return missing(records, levels[0].resources)
    flag = None
    if key in {"rps", "generator_cpu"} and any(level.window.generator_saturated for level in levels):
        flag = warning(FlagCode.GENERATOR_SATURATED, SATURATED)
    if key == "failures" and any(value > 0 for value in values):
        flag = warning(FlagCode.REQUESTS_FAILED, "some requests failed")
    return Cell(values=values, flag=flag)
