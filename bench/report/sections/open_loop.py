"""Open-loop rows at the common offered load (with the queueing model beside them), and max RPS under SLO."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.analysis.queueing import max_rate_under_slo, predicted_quantile_ms
from bench.analysis.slo_search import allowed_over, exceeds_quantile
from bench.load.arrivals import LATE_AFTER_MS
from bench.records import RunRecords, VariantRecords
from bench.records.derived import (
    QUEUEING_MODEL,
    finite,
    open_value,
    servers,
    service_core_count,
    service_time_ms,
)
from bench.records.models import SloProbe, SloSearch
from bench.report.flags import Flag, FlagCode, info, warning
from bench.report.sections.common import RowSpec, missing, spec_rows
from bench.report.table import Cell, Row

# A search result under this share of the queueing model's rate is flagged: queueing does not explain it.
SLO_MODEL_SHARE = 0.5


def openloop_section(run: RunRecords) -> list[Row]:
    chosen = run.info.open_loop
    if chosen is None or not run.info.profile.open_runs:
        return []
    rate = chosen.rate
    section = (
        f"open loop at a common offered load: {rate:g} req/s Poisson ({chosen.basis}); latency from each"
        " request's scheduled send time"
    )
    specs: list[RowSpec] = [
        ("open.rps", "achieved requests/s", "req/s", "higher"),
        ("open.p50", "latency p50 (from schedule)", "ms", "lower"),
        ("open.p90", "latency p90 (from schedule)", "ms", "lower"),
        ("open.p99", "latency p99 (from schedule)", "ms", "lower"),
        ("open.p99.9", "latency p99.9 (from schedule)", "ms", "lower"),
        ("open.max", "latency max (from schedule)", "ms", "lower"),
        ("open.service_p99", "p99 from the actual send (uncorrected)", "ms", "lower"),
        ("open.late", f"requests sent late (> {LATE_AFTER_MS:g} ms after schedule)", "%", "lower"),
        ("open.model_p99", f"queueing model {QUEUEING_MODEL} p99 at this rate", "ms", None),
    ]

    def cell(records: VariantRecords, key: str) -> Cell:
        runs = records.open_runs
        if not runs:
            return missing(records)
        if key == "open.model_p99":
            return _model_p99_cell(records, rate, service_core_count(run.info))
        values = [open_value(one, key.removeprefix("open.")) for one in runs]
        flag = None
        if key == "open.late" and any(one.window.adherence.behind_schedule for one in runs):
            flag = warning(FlagCode.BEHIND_SCHEDULE, "generator fell behind its schedule")
        unstable = [one.window.stability.reason for one in runs if not one.window.stability.stable]
        if key == "open.rps" and unstable:
            flag = warning(FlagCode.UNSTABLE_RUN, f"unstable: {unstable[0].removeprefix('unstable: ')}")
        return Cell(values=values, flag=flag)

    return spec_rows(run, section, specs, cell, "open-loop runs")


def _model_p99_cell(records: VariantRecords, rate: float, cores: int | None) -> Cell:
    service_ms = service_time_ms(records)
    if not finite(service_ms):
        return Cell(text="n/a (no concurrency-1 latency to take the service time from)")
    count = servers(records, cores)
    predicted = predicted_quantile_ms(QUEUEING_MODEL, rate, service_ms, count)
    basis = f"S = {service_ms:.1f} ms (mean at concurrency 1), c = {count}"
    if not finite(predicted):
        return Cell(text=f"saturated ({basis})")
    return Cell(values=[predicted], flag=info(FlagCode.MODEL_BASIS, basis))


def slo_section(run: RunRecords) -> list[Row]:
    slo_ms, cores = run.info.profile.slo_ms, service_core_count(run.info)
    section = f"max sustainable throughput under the SLO p99 <= {slo_ms:g} ms (Poisson, bounded bisection)"
    specs: list[RowSpec] = [
        ("slo.max_rps", "max requests/s with p99 within the SLO", "req/s", "higher"),
        ("slo.p99_at_max", "p99 at that rate (its probe)", "ms", "lower"),
        ("slo.over_at_max", "requests over the SLO at that rate (its probe)", "%", None),
        ("slo.probes", "probes run (repeats of unstable ones included)", "count", None),
        ("slo.model_max_rps", f"queueing model {QUEUEING_MODEL} prediction", "req/s", None),
    ]

    def cell(records: VariantRecords, key: str) -> Cell:
        search = records.slo
        if search is None:
            if not run.info.profile.slo_search:
                return Cell(text="n/a (not in this profile: --profile full or --slo-search)")
            return missing(records)
        queue = QueueModel(service_time_ms(records), servers(records, cores))
        model_rps = queue.max_rps(slo_ms)
        if key == "slo.max_rps":
            return Cell(values=[search.max_rps], flag=slo_search_flag(search, queue))
        if key == "slo.p99_at_max":
            return _p99_at_max_cell(search)
        if key == "slo.over_at_max":
            return over_at_max_cell(search)
        if key == "slo.probes":
            return Cell(values=[float(sum(probe.attempts for probe in search.probes))])
        if not finite(model_rps):
            return Cell(text="n/a (no concurrency-1 latency)")
        return Cell(values=[model_rps])

    return spec_rows(run, section, specs, cell, "one search")


@dataclass(frozen=True)
class QueueModel:
    """The queueing model of one variant: its service time (mean at concurrency 1) and its servers."""

    service_ms: float
    servers: int

    def max_rps(self, slo_ms: float) -> float:
        if not finite(self.service_ms):
            return math.nan
        return max_rate_under_slo(QUEUEING_MODEL, self.service_ms, slo_ms, self.servers)

    def p99_ms(self, rate: float) -> float:
        return predicted_quantile_ms(QUEUEING_MODEL, rate, self.service_ms, self.servers)


def _missed(probe: SloProbe, slo_ms: float) -> bool:
    """The search's own judgement of a recorded probe (records without counts: their point p99)."""
    if probe.failures:
        return True
    if probe.requests is not None and probe.over_slo is not None:
        return exceeds_quantile(probe.requests, probe.over_slo)
    return probe.p99_ms is None or probe.p99_ms > slo_ms


def slo_search_flag(search: SloSearch, queue: QueueModel) -> Flag | None:
    """The search's own flags, and a warning when it found far less than queueing alone allows: then slow
    requests at rates where little queues (pauses of the service or of the machine) decide the SLO. The
    evidence is the lowest rate that missed, against the model's p99 there."""
    model_rps = queue.max_rps(search.slo_ms)
    if not (finite(model_rps) and search.max_rps < SLO_MODEL_SHARE * model_rps):
        return warning(FlagCode.SLO_SEARCH, "; ".join(search.flags)) if search.flags else None
    missed = [
        probe for probe in search.probes if probe.rate > search.max_rps and _missed(probe, search.slo_ms)
    ]
    evidence = ""
    if missed:
        lowest = min(missed, key=lambda probe: probe.rate)
        measured = f"p99 {lowest.p99_ms:.0f} ms" if lowest.p99_ms is not None else "nothing answered"
        if lowest.requests and lowest.over_slo is not None:
            share = lowest.over_slo / lowest.requests
            measured += (
                f", {lowest.over_slo} of {lowest.requests} requests ({share:.1%}) over {search.slo_ms:g} ms"
            )
        model_p99 = queue.p99_ms(lowest.rate)
        model = f"gives p99 {model_p99:.0f} ms" if finite(model_p99) else "saturates"
        evidence = (
            f"; the lowest rate that missed, {lowest.rate:.1f} req/s, measured {measured} where the model"
            f" {model}"
        )
    message = (
        f"{search.max_rps:.1f} req/s is under {SLO_MODEL_SHARE:.0%} of what an {QUEUEING_MODEL} queue with"
        f" S = {queue.service_ms:.1f} ms and c = {queue.servers} sustains ({model_rps:.1f} req/s): slow"
        f" requests that queueing does not explain set the limit{evidence}"
    )
    return warning(FlagCode.SLO_OUTLIERS, "; ".join([message, *search.flags]))


def over_at_max_cell(search: SloSearch) -> Cell:
    at_max = [probe for probe in search.probes if math.isclose(probe.rate, search.max_rps) and probe.requests]
    if search.max_rps <= 0 or not at_max or at_max[-1].over_slo is None:
        return Cell(text="n/a")
    probe = at_max[-1]
    noise = allowed_over(probe.requests)
    count = f"{probe.over_slo} of {probe.requests}; up to {noise} is within sampling noise"
    return Cell(values=[100.0 * probe.over_slo / probe.requests], flag=info(FlagCode.SLO_SEARCH, count))


def _p99_at_max_cell(search: SloSearch) -> Cell:
    """The p99 the search measured at the rate it reports (max_rps is the rate of a passing probe)."""
    if search.max_rps <= 0:
        return Cell(text="n/a (the SLO was missed already at the lowest rate probed)")
    at_max = [
        probe.p99_ms
        for probe in search.probes
        if math.isclose(probe.rate, search.max_rps) and finite(probe.p99_ms)
    ]
    return Cell(values=[at_max[-1]]) if at_max else Cell(text="n/a (no probe at that rate)")
