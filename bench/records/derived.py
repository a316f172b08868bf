"""Figures derived from the typed records, each defined once and shared by the compare run and the report."""

from __future__ import annotations

import math

from bench.collectors.resources import summarize_samples, within_window
from bench.records.loader import PayloadRepeat, VariantRecords
from bench.records.models import Ceiling, Floor, LoadLevel, NotMeasured, OpenLoopRun, RunInfo
from bench.stats import latency_summary, percentile, spread

MB = 1e6
QUEUEING_MODEL = "M/D/c"  # one image size through one model: service time is close to deterministic


def level_metrics(level: LoadLevel) -> dict[str, float]:
    """Every closed-loop row's figure for one repeat of one level (resource rows only when sampled)."""
    window = level.window
    duration = max(window.duration_s, 1e-9)
    metrics = latency_summary(level.latencies)
    metrics.update(
        {
            "rps": window.throughput_rps,
            "failures": float(window.failures),
            "sent_mb_s": window.request_bytes / duration / MB,
            "received_kb_s": window.response_bytes / duration / 1e3,
            "generator_cpu": window.generator_cpu_percent,
        }
    )
    resources = level.resources
    if resources is not None and not isinstance(resources, NotMeasured):
        samples = [sample.model_dump() for sample in resources.samples]
        metrics.update(summarize_samples(within_window(samples, window.start_unix, window.duration_s)))
    return metrics


def best_closed_rps_per_repeat(records: VariantRecords) -> list[float]:
    """Per repeat: the best closed-loop throughput over the concurrency levels (the saturated figure)."""
    best: dict[int, float] = {}
    for level in records.levels:
        best[level.repeat] = max(best.get(level.repeat, -math.inf), level.window.throughput_rps)
    return [best[repeat] for repeat in sorted(best)]


def best_closed_rps(records: VariantRecords) -> float:
    """THE best closed-loop throughput of a variant: the median over repeats of each repeat's best; NaN
    if none was measured. Bounds the SLO search and sets the common open-loop rate."""
    return spread(best_closed_rps_per_repeat(records)).median


def service_time_ms(records: VariantRecords) -> float:
    """Mean latency at concurrency 1 (closed loop, over HTTP), median over repeats: the queueing model's S."""
    means = [sum(level.latencies) / len(level.latencies) for level in records.at(1) if level.latencies]
    return spread(means).median


def servers(records: VariantRecords, cores: int | None = None) -> int:
    """Requests served at once, from /info (1 when unknown), and no more than ``cores`` when the service's
    core count is known: two single-threaded workers on one core take turns, not serve two at once."""
    info = records.info
    count = 1 if info is None or isinstance(info, NotMeasured) else info.servers
    return min(count, cores) if cores else count


def service_core_count(info: RunInfo) -> int | None:
    """The cores every service had: those it was pinned to, else the machine's (None when unknown)."""
    return len(info.pinning.service_cores) or info.sysinfo.logical_cores


def open_value(run: OpenLoopRun, name: str) -> float:
    """One open-loop row's figure for one run: rps, late (%), service_p99, max or a percentile (p50...)."""
    if name == "rps":
        return run.window.throughput_rps
    if name == "late":
        return 100.0 * run.window.adherence.late_fraction
    if name == "service_p99":
        return percentile([request.service_ms for request in run.requests if request.ok], 99.0)
    if name == "max":
        return max(run.latencies) if run.latencies else math.nan
    return percentile(run.latencies, float(name.removeprefix("p")))


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def floor_multiples(repeats: list[PayloadRepeat]) -> list[float]:
    """Per repeat with both measured: the in-process ceiling's median ms/request over that repeat's floor
    (decode alone + network alone), i.e. how many times its limit the variant's request path costs."""
    return [
        repeat.ceiling.median_ms / repeat.floor.floor_ms
        for repeat in repeats
        if isinstance(repeat.ceiling, Ceiling)
        and isinstance(repeat.floor, Floor)
        and repeat.floor.floor_ms > 0
    ]
