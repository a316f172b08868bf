"""Named measurement plans: `quick` (the trio in minutes), `frameworks` (serving frameworks, quick sizes)
and `full` (every strategy at anchor scale, sized to an hour)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from bench.analysis.slo_search import DEFAULT_ATTEMPTS, DEFAULT_PROBES, DEFAULT_SLO_MS

P99_TAIL_SAMPLES = 10  # requests beyond the p99: with fewer, the p99 is nearly the maximum
THROUGHPUT_RSE = 0.03  # completions are close to Poisson: the count's relative standard error is 1/sqrt(n)


def requests_for_precision(tail_samples: int = P99_TAIL_SAMPLES, rse: float = THROUGHPUT_RSE) -> int:
    """Requests one closed-loop level needs for its p99 and its throughput to mean something."""
    return max(math.ceil(tail_samples / 0.01), math.ceil(1.0 / rse**2))


LoadMode = Literal["closed"]  # the concurrency levels are closed loop; open loop has its own settings below


@dataclass(frozen=True)
class Profile:
    name: str
    concurrency_levels: tuple[int, ...]
    warmup_s: float
    duration_s: float
    requests_per_level: (
        int | None
    )  # when set, a level ends after this many measured requests (duration is a cap)
    repeats: int
    startup_runs: int
    cold_runs: int
    warm_requests: int = 5
    load_mode: LoadMode = "closed"
    # The primary payload: closed-loop levels, start-up, open loop, SLO search and the ceiling's detail rows.
    payload: str = "photo_medium"
    # Payloads of the in-process ceiling and floor (the ratio to the floor depends on the image size); empty:
    # the primary one only. The primary payload is always measured too (see ``inprocess_payloads``).
    payloads: tuple[str, ...] = ()
    # In-process ceiling: timed requests per repeat (a fresh process each), untimed warmup, time cap.
    ceiling_iterations: int = 150
    ceiling_warmup: int = 10
    ceiling_max_s: float = 20.0
    # Open loop at one offered rate common to every variant: `open_rate`, or else `open_fraction` of the
    # slowest variant's best closed-loop throughput. 0 runs turns it off.
    open_runs: int = 1
    open_rate: float | None = None
    open_fraction: float = 0.5
    open_warmup_s: float = 2.0
    open_duration_s: float = 12.0
    # Max RPS under SLO: bisection between slo_low and slo_high times the variant's closed-loop best.
    slo_search: bool = False
    slo_ms: float = DEFAULT_SLO_MS
    slo_probes: int = DEFAULT_PROBES
    slo_probe_s: float = 15.0
    slo_attempts: int = DEFAULT_ATTEMPTS
    slo_low: float = 0.5  # half the closed-loop best; the search halves it while the SLO is missed
    slo_high: float = 1.3
    # Deeper in-process analyses.
    sweep: bool = False
    profiler: bool = False
    jpeg_draft: bool = False  # JPEG_DRAFT's accuracy and decode effect (about 20-30 s per variant)
    # Wall-clock budget of a run (bench/budget.py sizes the profile to fit it); None: run the sizes as given.
    budget_s: float | None = None

    @property
    def inprocess_payloads(self) -> tuple[str, ...]:
        """Every payload measured in process: ``payloads``, with the primary payload first when not listed."""
        listed = self.payloads or (self.payload,)
        return listed if self.payload in listed else (self.payload, *listed)

    def with_overrides(self, **overrides: Any) -> Profile:
        return replace(self, **{key: value for key, value in overrides.items() if value is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        concurrency_levels=(1, 8),
        warmup_s=3.0,
        duration_s=12.0,
        requests_per_level=None,
        repeats=2,
        startup_runs=3,
        cold_runs=2,
    ),
    # The anchor ran `ab -n 5000 -c 50` and 15 container starts; full adds the sweep below and above it, for
    # every strategy of the registry, within an hour: levels end at the precision they need (or a time cap).
    "full": Profile(
        name="full",
        concurrency_levels=(1, 4, 16, 50),
        warmup_s=3.0,
        duration_s=300.0,
        requests_per_level=requests_for_precision(),
        repeats=2,
        startup_runs=15,
        cold_runs=2,
        payloads=("photo_small", "photo_medium", "photo_large"),
        ceiling_iterations=1000,
        ceiling_warmup=50,
        ceiling_max_s=120.0,
        open_runs=3,
        open_warmup_s=5.0,
        open_duration_s=60.0,
        slo_search=True,
        slo_attempts=2,  # a probe is repeated once at most (unstable, or its generator late)
        sweep=True,
        profiler=True,
        jpeg_draft=False,  # the draft is a variant now (onnx-fast), measured and gated like the others
        budget_s=55 * 60.0,  # the target is one hour; the estimate's margin is the rest
    ),
}


# The serving frameworks (Ray Serve, BentoML, MLServer) against the plain services on the same runtime, at the
# quick profile's sizes: what a framework's own request handling costs.
PROFILES["frameworks"] = replace(PROFILES["quick"], name="frameworks")


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose from {sorted(PROFILES)}") from None
