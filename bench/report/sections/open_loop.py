"""Open-loop rows at the common offered load (with the queueing model beside them), and max RPS under SLO."""

from __future__ import annotations

import math

from bench.analysis.queueing import max_rate_under_slo, predicted_quantile_ms
from bench.load.arrivals import LATE_AFTER_MS
from bench.records import RunRecords, VariantRecords
from bench.records.derived import QUEUEING_MODEL, finite, open_value, servers, service_time_ms
from bench.records.models import SloSearch
from bench.report.flags import FlagCode, info, warning
from bench.report.sections.common import RowSpec, missing, spec_rows
from bench.report.table import Cell, Row


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
            return _model_p99_cell(records, rate)
        values = [open_value(one, key.removeprefix("open.")) for one in runs]
        flag = None
        if key == "open.late" and any(one.window.adherence.behind_schedule for one in runs):
            flag = warning(FlagCode.BEHIND_SCHEDULE, "generator fell behind its schedule")
        unstable = [one.window.stability.reason for one in runs if not one.window.stability.stable]
        if key == "open.rps" and unstable:
            flag = warning(FlagCode.UNSTABLE_RUN, f"unstable: {unstable[0].removeprefix('unstable: ')}")
        return Cell(values=values, flag=flag)

    return spec_rows(run, section, specs, cell, "open-loop runs")


def _model_p99_cell(records: VariantRecords, rate: float) -> Cell:
    service_ms = service_time_ms(records)
    if not finite(service_ms):
        return Cell(text="n/a (no concurrency-1 latency to take the service time from)")
    count = servers(records)
    predicted = predicted_quantile_ms(QUEUEING_MODEL, rate, service_ms, count)
    basis = f"S = {service_ms:.1f} ms (mean at concurrency 1), c = {count}"
    if not finite(predicted):
        return Cell(text=f"saturated ({basis})")
    return Cell(values=[predicted], flag=info(FlagCode.MODEL_BASIS, basis))


def slo_section(run: RunRecords) -> list[Row]:
    slo_ms = run.info.profile.slo_ms
    section = f"max sustainable throughput under the SLO p99 <= {slo_ms:g} ms (Poisson, bounded bisection)"
    specs: list[RowSpec] = [
        ("slo.max_rps", "max requests/s with p99 within the SLO", "req/s", "higher"),
        ("slo.p99_at_max", "p99 at that rate (its probe)", "ms", "lower"),
        ("slo.probes", "probes run (repeats of unstable ones included)", "count", None),
        ("slo.model_max_rps", f"queueing model {QUEUEING_MODEL} prediction", "req/s", None),
    ]

    def cell(records: VariantRecords, key: str) -> Cell:
        search = records.slo
        if search is None:
            if not run.info.profile.slo_search:
                return Cell(text="n/a (not in this profile: --profile full or --slo-search)")
            return missing(records)
        if key == "slo.max_rps":
            flag = warning(FlagCode.SLO_SEARCH, "; ".join(search.flags)) if search.flags else None
            return Cell(values=[search.max_rps], flag=flag)
        if key == "slo.p99_at_max":
            return _p99_at_max_cell(search)
        if key == "slo.probes":
            return Cell(values=[float(sum(probe.attempts for probe in search.probes))])
        service_ms = service_time_ms(records)
        if not finite(service_ms):
            return Cell(text="n/a (no concurrency-1 latency)")
        return Cell(values=[max_rate_under_slo(QUEUEING_MODEL, service_ms, slo_ms, servers(records))])

    return spec_rows(run, section, specs, cell, "one search")


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
