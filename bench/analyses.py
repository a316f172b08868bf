"""The analysis phase of a compare run, after the closed-loop repeats: per variant, the in-process jobs
(ceiling, and in the full profile the sweep and the operator profile), then with the service up an open-loop
run at the common offered rate and, in the full profile, the search for max RPS under the SLO.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.analysis.slo_search import (
    SLO_PROBE_REQUESTS,
    ProbeResult,
    SearchResult,
    search_max_rate,
    stable_probe,
)
from bench.analysis.stability import window_plan
from bench.collectors.accuracy import DEFAULT_MANIFEST
from bench.inprocess.launch import run_inprocess, run_payload_jobs, unavailable_reason
from bench.load.driver import LoadSpec, run_level
from bench.payloads import IMAGES_DIR, Payload
from bench.probe import drain_backlog
from bench.profiles import Profile
from bench.records import load_run
from bench.records.derived import best_closed_rps, service_time_ms
from bench.records.models import OpenLoopWindow
from bench.registry import Variant
from bench.results import RunDir, read_json, write_json
from bench.runners.base import Runner, Service
from bench.stats import percentile

FALLBACK_OPEN_RATE = 2.0  # req/s when no closed-loop throughput was measured to derive the rate from
# Before every probe the service must answer one request within this multiple of its idle latency (its mean
# at concurrency 1): an overloaded probe leaves queued work that the next probe would otherwise pay for.
DRAIN_LATENCY_FACTOR = 2.0
DRAIN_TIMEOUT_S = 60.0
DRAIN_MAX_REQUESTS = 3000


def common_open_rate(run_dir: RunDir, variants: list[Variant], profile: Profile) -> dict[str, Any]:
    """The one offered rate every variant gets, and how it was chosen."""
    if profile.open_rate is not None:
        return {"rate": profile.open_rate, "basis": "set by the profile (--open-rate)"}
    records = load_run(run_dir).variants
    best = {variant.name: best_closed_rps(records[variant.name]) for variant in variants}
    measured = {name: rps for name, rps in best.items() if math.isfinite(rps)}
    if not measured:
        return {"rate": FALLBACK_OPEN_RATE, "basis": "no closed-loop throughput measured: fallback"}
    slowest = min(measured, key=measured.__getitem__)
    return {
        "rate": round(profile.open_fraction * measured[slowest], 2),
        "basis": f"{profile.open_fraction:g} x the slowest variant's best closed-loop throughput"
        f" ({slowest}, {measured[slowest]:.1f} req/s)",
    }


def open_loop_spec(service: Service, payload: Payload, rate: float, warmup_s: float, duration_s: float,
                   seed: int) -> LoadSpec:  # fmt: skip
    """Long enough at low rates for the stability windows to hold enough requests (see window_plan)."""
    duration_s, window_s = window_plan(rate, duration_s)
    return LoadSpec(
        host=service.base_url,
        predict_path=service.variant.predict_path,
        payload_image=str(payload.source),
        payload_format=service.variant.payload_format.value,
        oip_input=service.variant.oip_input,
        users=1,
        warmup_s=warmup_s,
        duration_s=duration_s,
        mode="open",
        rate=rate,
        seed=seed,
        window_s=window_s,
    )


def probe_result(
    rate: float, window: OpenLoopWindow, latencies_ms: list[float], slo_ms: float
) -> ProbeResult:
    return ProbeResult(
        rate=rate,
        p99_ms=percentile(latencies_ms, 99.0) if latencies_ms else math.inf,
        achieved_rps=window.throughput_rps,
        requests=len(latencies_ms),
        over_slo=sum(latency > slo_ms for latency in latencies_ms),
        failures=window.failures,
        stable=window.stability.stable,
        behind_schedule=window.adherence.behind_schedule or window.generator_saturated,
        detail={"stability": window.stability.reason, "late": window.adherence.late},
    )


def search_slo(
    service: Service,
    payload: Payload,
    profile: Profile,
    best_rps: float,
    out_dir: Path,
    cores: list[int] | None,
    idle_ms: float = math.nan,
) -> SearchResult:
    """Bisection for the highest Poisson rate whose p99 meets the SLO; each probe in ``out_dir/probe-NN``,
    each on a drained service (``idle_ms``: its mean latency at concurrency 1; unknown: 1 / ``best_rps``)."""
    probes_run = 0
    idle_ms = idle_ms if math.isfinite(idle_ms) else 1000.0 / best_rps
    predict_url = service.url(service.variant.predict_path)

    def run_once(rate: float) -> ProbeResult:
        nonlocal probes_run
        probe_dir = out_dir / f"probe-{probes_run:02d}"
        drain = drain_backlog(
            predict_url, payload.body, payload.headers, DRAIN_LATENCY_FACTOR * idle_ms,
            timeout_s=DRAIN_TIMEOUT_S, max_requests=DRAIN_MAX_REQUESTS,
        )  # fmt: skip
        duration_s = max(profile.slo_probe_s, SLO_PROBE_REQUESTS / rate)
        spec = open_loop_spec(service, payload, rate, 2.0, duration_s, seed=probes_run)
        probes_run += 1
        window = OpenLoopWindow.model_validate(run_level(spec, probe_dir, cores))
        found = probe_result(rate, window, read_json(probe_dir / "latencies.json"), profile.slo_ms)
        return replace(found, detail={**found.detail, **drain.to_dict()})

    probe = stable_probe(run_once, profile.slo_attempts)
    result = search_max_rate(
        probe, profile.slo_low * best_rps, profile.slo_high * best_rps, profile.slo_ms, profile.slo_probes
    )
    write_json(out_dir / "search.json", {**result.to_dict(), "closed_loop_best_rps": best_rps})
    return result


def run_inprocess_jobs(
    variant: Variant,
    payload: Payload,
    profile: Profile,
    run_dir: RunDir,
    cores: list[int] | None,
    advance: Callable[[str], None],
) -> None:
    """Per repeat, the ceiling and the floor of every in-process payload (a fresh process each), then the
    sweep, the profile and the JPEG draft measurement if the profile asks."""
    available = unavailable_reason(variant) is None
    ceiling = {
        "iterations": profile.ceiling_iterations,
        "warmup": profile.ceiling_warmup,
        "max_seconds": profile.ceiling_max_s,
    }
    for repeat in range(profile.repeats):
        run_payload_jobs(
            variant, profile.inprocess_payloads, profile.payload, run_dir, repeat, cores, ceiling
        )
        if available:
            advance(f"{variant.name}: in-process ceiling and floor {repeat + 1}/{profile.repeats}")
    if not available:
        return
    if profile.sweep:
        run_inprocess("sweep", variant, payload, run_dir.analysis_dir(variant.name), cores)
        advance(f"{variant.name}: batch x size sweep")
    if profile.profiler:
        run_inprocess("profile", variant, payload, run_dir.analysis_dir(variant.name), cores, {"calls": 20})
        advance(f"{variant.name}: operator profile")
    if profile.jpeg_draft:
        params = {"manifest": str(DEFAULT_MANIFEST), "photos_dir": str(IMAGES_DIR)}
        run_inprocess("jpeg_draft", variant, payload, run_dir.analysis_dir(variant.name), cores, params)
        advance(f"{variant.name}: JPEG draft effect")


def run_service_analyses(
    runner: Runner,
    variant: Variant,
    payload: Payload,
    profile: Profile,
    run_dir: RunDir,
    open_rate: float,
    generator_cores: list[int] | None,
    advance: Callable[[str], None],
) -> None:
    """With one fresh service: the open-loop runs at the common rate, then the SLO search."""
    service = runner.start_ready(
        variant, log_path=run_dir.variant_dir(variant.name) / "logs" / "analyses.log"
    )
    try:
        for repeat in range(profile.open_runs):
            spec = open_loop_spec(
                service, payload, open_rate, profile.open_warmup_s, profile.open_duration_s, repeat
            )
            run_level(spec, run_dir.openloop_dir(variant.name, repeat), generator_cores)
            advance(f"{variant.name}: open loop {repeat + 1}/{profile.open_runs}")
        if profile.slo_search:
            records = load_run(run_dir).variants[variant.name]
            best = best_closed_rps(records)
            if not math.isfinite(best):
                raise RuntimeError("no closed-loop throughput to bound the SLO search")
            search_slo(
                service, payload, profile, best, run_dir.slo_dir(variant.name), generator_cores,
                service_time_ms(records),
            )  # fmt: skip
            advance(f"{variant.name}: SLO search")
    finally:
        runner.stop(service)


def analysis_steps(profile: Profile, in_process: bool) -> int:
    """Progress steps one variant adds (for the progress bar's total)."""
    steps = profile.open_runs + int(profile.slo_search)
    if in_process:
        steps += profile.repeats + int(profile.sweep) + int(profile.profiler) + int(profile.jpeg_draft)
    return steps
