"""How long a compare run will take, and a profile sized to fit a time budget.

Every phase is estimated from the profile's sizes and a few per-step costs measured on this kind of machine
(2 cores, the slowest contestant at about 24 req/s at c1); the estimate is printed before the run starts and
recorded in run.json beside the duration it really took, so the model can be checked against every run.

Closed-loop levels are sized by the precision they buy, not by a fixed count: a level ends once it holds
``requests_per_level`` requests (the full profile's: ``bench.profiles.requests_for_precision``), or at its
time cap, whichever comes first. ``fit_to_budget`` shrinks the time caps and the other sizes (never below
``FLOORS``) until the estimate fits the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from bench.analysis.slo_search import SLO_PROBE_REQUESTS
from bench.analysis.stability import window_plan
from bench.profiles import Profile
from bench.registry import Variant

# Per-step costs (seconds), measured on this machine kind; deliberately on the slow side.
SERVICE_START_S = 3.0  # spawn to ready plus stop, for a Python service (torch's import is the slowest)
MACHINE_SPEED_S = 1.5  # the calibration loops before a load repeat (bench.collectors.machine_speed), 1 core
STARTUP_RUN_S = 4.0  # one start-up measurement: start, the warm requests, stop
INPROCESS_PROCESS_S = 5.0  # a fresh in-process job: interpreter, imports, model load
INPROCESS_REQUEST_S = 0.045  # one in-process request of the slowest contestant on the primary payload
FLOOR_JOB_S = 6.0  # the floor of one payload (decode alone, network alone), a fresh process
SWEEP_S = 15.0
PROFILER_S = 15.0  # torch's (onnx's takes 2 s)
JPEG_DRAFT_S = 30.0
APPROXIMATION_GATES_S = 45.0
SLOWEST_RATE = 20.0  # req/s: a level sized by request count ends no sooner than count / this rate
PROBE_WARMUP_S = 2.0
# An SLO probe's wait for the last one's backlog, on average: one request after a probe that held, a few
# seconds after an overloaded one (up to 256 queued requests).
DRAIN_S = 2.0

# The smallest sizes a budget may shrink a profile to: below these the figures stop meaning anything.
FLOORS: dict[str, float] = {
    "duration_s": 12.0,
    "startup_runs": 5,
    "ceiling_iterations": 100,
    "ceiling_max_s": 10.0,
    "open_runs": 1,
    "open_duration_s": 20.0,
    "slo_probe_s": 10.0,
    "slo_probes": 4,
}
INTEGER_FIELDS = {field.name for field in fields(Profile) if field.type in ("int", int)}


@dataclass(frozen=True)
class Estimate:
    """Seconds per phase of one run, and their sum."""

    phases: dict[str, float]

    @property
    def total_s(self) -> float:
        return sum(self.phases.values())

    def describe(self) -> str:
        shown = ", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in self.phases.items() if seconds)
        return f"about {self.total_s / 60:.0f} min ({shown} min)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_s": round(self.total_s, 1),
            "phases_s": {k: round(v, 1) for k, v in self.phases.items()},
        }


def _level_s(profile: Profile) -> float:
    """One closed-loop level: its warmup, then the count at the slowest rate or the time cap."""
    measured = profile.duration_s
    if profile.requests_per_level is not None:
        measured = min(measured, profile.requests_per_level / SLOWEST_RATE)
    return profile.warmup_s + measured


def estimate(profile: Profile, variants: list[Variant]) -> Estimate:
    """What a run of ``variants`` with ``profile`` will take (the approximation gates included)."""
    count = len(variants)
    in_process = sum(variant.in_process is not None for variant in variants)
    approximating = sum(variant.approximates is not None for variant in variants)
    per_payload = INPROCESS_PROCESS_S + min(
        profile.ceiling_max_s, (profile.ceiling_iterations + profile.ceiling_warmup) * INPROCESS_REQUEST_S
    )
    inprocess_s = profile.repeats * len(profile.inprocess_payloads) * (per_payload + FLOOR_JOB_S)
    inprocess_s += profile.sweep * SWEEP_S + profile.profiler * PROFILER_S + profile.jpeg_draft * JPEG_DRAFT_S
    open_s = 0.0
    if profile.open_runs:
        open_s = profile.open_runs * (
            profile.open_warmup_s + window_plan(SLOWEST_RATE / 2, profile.open_duration_s)[0]
        )
    if profile.open_runs or profile.slo_search:
        open_s += SERVICE_START_S
    if profile.slo_search:
        # the probes bisect between slo_low and slo_high times the best, and hold SLO_PROBE_REQUESTS each
        probe_rate = (profile.slo_low + profile.slo_high) / 2 * SLOWEST_RATE
        measured_s = max(window_plan(probe_rate, profile.slo_probe_s)[0], SLO_PROBE_REQUESTS / probe_rate)
        probe_s = PROBE_WARMUP_S + DRAIN_S + measured_s
        open_s += (profile.slo_probes + profile.slo_attempts) * probe_s
    levels = profile.repeats * (
        MACHINE_SPEED_S + SERVICE_START_S + len(profile.concurrency_levels) * _level_s(profile)
    )
    return Estimate(
        {
            "start-up": count * (profile.startup_runs + profile.cold_runs) * STARTUP_RUN_S,
            "closed loop": count * levels,
            "in process": in_process * inprocess_s,
            "open loop and SLO": count * open_s,
            "approximation gates": approximating * APPROXIMATION_GATES_S,
        }
    )


def _scaled(profile: Profile, factor: float) -> Profile:
    """The profile with every budget-sized field times ``factor``, none below its floor nor above today's."""
    changes: dict[str, Any] = {}
    for name, floor in FLOORS.items():
        current = getattr(profile, name)
        value = min(current, max(floor, current * factor))
        changes[name] = math.ceil(value) if name in INTEGER_FIELDS else round(value, 1)
    return replace(profile, **changes)


@dataclass(frozen=True)
class Plan:
    profile: Profile
    estimate: Estimate
    budget_s: float | None
    fits: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"budget_s": self.budget_s, "fits": self.fits, "note": self.note, **self.estimate.to_dict()}


def fit_to_budget(profile: Profile, variants: list[Variant], budget_s: float | None) -> Plan:
    """The profile as run: unchanged when it fits ``budget_s`` (or there is none), else shrunk by the one
    factor (bisected) that brings its estimate under the budget; at the floors when even those do not fit."""
    full = estimate(profile, variants)
    if budget_s is None or full.total_s <= budget_s:
        note = "no budget" if budget_s is None else f"fits the {budget_s / 60:.0f} min budget unchanged"
        return Plan(profile, full, budget_s, True, note)
    low, high = 0.0, 1.0
    for _ in range(30):
        middle = (low + high) / 2
        if estimate(_scaled(profile, middle), variants).total_s <= budget_s:
            low = middle
        else:
            high = middle
    sized = _scaled(profile, low)
    sized_estimate = estimate(sized, variants)
    fits = sized_estimate.total_s <= budget_s
    note = (
        f"sized to the {budget_s / 60:.0f} min budget (the profile alone: {full.total_s / 60:.0f} min)"
        if fits
        else f"exceeds the {budget_s / 60:.0f} min budget at its smallest sizes (--budget, fewer variants)"
    )
    return Plan(sized, sized_estimate, budget_s, fits, note)
