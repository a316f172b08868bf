"""One variant's soak: start it as compare does, measure its capacity, hold a share of it while sampling.

The service is started by the run's runner (``LocalRunner``: the soak reads the process tree, so it needs
local processes) and awaited on its ready path (``bench.probe`` through ``Runner.start_ready``); the load is
the open-loop driver (``bench.load.openloop``: seeded Poisson arrivals, at most ``max_in_flight``
outstanding) for the whole duration, its per-request records (``requests.json``) giving the requests served
by each sample's time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from bench.load.driver import LoadSpec, run_level
from bench.records.models import OpenLoopRequest, OpenLoopWindow
from bench.registry import Variant
from bench.runners.base import Runner
from bench.soak.capacity import measure_capacity
from bench.soak.plan import SoakPlan
from bench.soak.records import LoadSummary, TreeSample, VariantSoak
from bench.soak.sampler import TreeSampler, sample_tree
from bench.soak.verdict import SOCKET_RELEASE_SLACK, Served, judge

RELEASE_WAIT_S = 10.0  # the generator has exited: its connections close at once (an idle one would live 75 s)
RELEASE_POLL_S = 0.5


def declared_workers(variant: Variant) -> int:
    """The worker processes its launch environment asks for (``*WORKERS``), 1 when it says nothing."""
    env = variant.local.env if variant.local is not None else {}
    counts = [int(value) for key, value in env.items() if key.endswith("WORKERS") and value.isdigit()]
    return max(counts, default=1)


def served_of(window: OpenLoopWindow, requests: list[OpenLoopRequest]) -> Served:
    """Send and completion times (unix seconds) of every request the open-loop driver recorded."""
    start = window.start_unix  # the schedule's origin: the soak's driver runs without a warm-up of its own
    scheduled = np.array([r.scheduled_s for r in requests], float)
    sent = start + scheduled + np.array([r.send_lag_ms for r in requests], float) / 1000.0
    done = start + scheduled + np.array([r.latency_ms for r in requests], float) / 1000.0
    ok = np.array([r.ok for r in requests], bool)
    return Served(sent=sent, done=done, ok=ok, capped=np.array([r.capped for r in requests], bool))


def _released_sample(root_pid: int, baseline_sockets: int) -> TreeSample | None:
    """The tree once the load's connections are gone, or as it stands after ``RELEASE_WAIT_S``."""
    deadline = time.monotonic() + RELEASE_WAIT_S
    sample = sample_tree(root_pid)
    while sample is not None and sample.socket_fds > baseline_sockets + SOCKET_RELEASE_SLACK:
        if time.monotonic() > deadline:
            break
        time.sleep(RELEASE_POLL_S)
        sample = sample_tree(root_pid)
    return sample


def soak_variant(
    variant: Variant, runner: Runner, plan: SoakPlan, out_dir: Path, generator_cores: list[int] | None
) -> VariantSoak:
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "service.log"
    service = runner.start_ready(variant, log_path=log_path)
    try:
        if service.pid is None:
            raise RuntimeError(f"{variant.name}: the {runner.name} runner gives no process tree to sample")
        if plan.rate_rps is not None:
            rate, capacity, source = plan.rate_rps, plan.rate_rps / plan.fraction, "given rate / fraction"
        else:
            capacity = measure_capacity(
                service, plan.payload, out_dir / "capacity", generator_cores,
                workers=declared_workers(variant), duration_s=plan.capacity_s,
            )  # fmt: skip
            rate, source = plan.fraction * capacity, f"closed loop, {plan.capacity_s:.0f} s"
        spec = LoadSpec(
            host=service.base_url,
            predict_path=variant.predict_path,
            payload_image=plan.payload,
            payload_format=variant.payload_format.value,
            oip_input=variant.oip_input,
            users=1,
            warmup_s=0.0,  # the verdict leaves its own warm-up out; every request counts on its axis
            duration_s=plan.duration_s,
            mode="open",
            rate=rate,
            seed=plan.seed,
            max_in_flight=plan.max_in_flight,
        )
        most = int(plan.duration_s / plan.sample_interval_s) + 64  # the driver may overrun its duration a bit
        sampler = TreeSampler(service.pid, plan.sample_interval_s, max_samples=most)
        sampler.start()
        try:
            run_level(spec, out_dir / "load", generator_cores)
        finally:
            samples = sampler.stop()
        released = _released_sample(service.pid, samples[0].socket_fds)
        if released is not None:
            samples.append(released)
    finally:
        runner.stop(service)

    return summarize(variant.name, samples, out_dir, plan, capacity, source, rate, log_path)


def summarize(
    name: str,
    samples: list[TreeSample],
    out_dir: Path,
    plan: SoakPlan,
    capacity: float,
    source: str,
    rate: float,
    log_path: Path,
) -> VariantSoak:
    """Judge one variant's samples against what its load driver wrote under ``out_dir / "load"``."""
    window = OpenLoopWindow.model_validate_json((out_dir / "load" / "window.json").read_text())
    records = json.loads((out_dir / "load" / "requests.json").read_text())
    served = served_of(window, [OpenLoopRequest.model_validate(r) for r in records])
    judged_from = window.start_unix + plan.judged_from_s
    judged_to = float(served.done.max()) if served.done.size else window.start_unix + plan.duration_s
    fits, verdict = judge(samples, served, judged_from, judged_to, plan.max_in_flight)
    end = np.array([judged_to])
    return VariantSoak(
        variant=name,
        service_log=str(log_path),
        load=LoadSummary(
            capacity_rps=capacity,
            capacity_source=source,
            rate_rps=rate,
            fraction=plan.fraction,
            duration_s=window.duration_s,
            requests=window.requests,
            successes=window.successes,
            failures=window.failures,
            errors=window.errors,
            achieved_rps=window.successes / max(window.duration_s, 1e-9),
            behind_schedule=window.adherence.behind_schedule,
            max_in_flight=plan.max_in_flight,
            peak_in_flight=int(served.in_flight_high_water(end)[0]),
        ),
        warmup_s=plan.judged_from_s,
        window_requests=fits.window_requests,
        rss=fits.rss,
        rss_raw_per_10k_requests=fits.rss_raw_per_10k,
        other_fds=fits.other_fds,
        socket_fds=fits.socket_fds,
        threads=fits.threads,
        processes=[len(samples[0].pids), len(samples[-1].pids)],
        verdict=verdict,
        samples=samples,
    )


def rejudge(soak: VariantSoak, out_dir: Path, plan: SoakPlan) -> VariantSoak:
    """The same samples and requests judged again by the current verdict (after a change of its rules)."""
    load = soak.load
    log_path = Path(soak.service_log) if soak.service_log else out_dir / "service.log"
    return summarize(soak.variant, soak.samples, out_dir, plan, load.capacity_rps, load.capacity_source,
                     load.rate_rps, log_path)  # fmt: skip
