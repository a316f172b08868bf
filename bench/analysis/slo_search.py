"""Max sustainable RPS under a latency SLO: a bounded bisection over offered rates.

The search only decides which rate to try next; ``probe(rate)`` runs the measurement (an open-loop run in
the bench, a synthetic function in the tests). A probe passes when its p99 is within the SLO and nothing
failed; an unstable probe, or one whose generator fell behind, is repeated up to ``attempts`` times and
keeps its flag if it never settles. A probe holds at least SLO_PROBE_REQUESTS requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_SLO_MS = 100.0
DEFAULT_PROBES = 7
DEFAULT_ATTEMPTS = 3
# A probe holds at least this many requests, so its p99 lies between the 2nd and 3rd slowest, not on the
# maximum (one late request would otherwise decide a low-rate probe).
SLO_PROBE_REQUESTS = 200


@dataclass(frozen=True)
class ProbeResult:
    rate: float
    p99_ms: float
    achieved_rps: float
    failures: int
    stable: bool
    behind_schedule: bool
    attempts: int = 1
    detail: dict[str, Any] = field(default_factory=dict)

    def passes(self, slo_ms: float) -> bool:
        return self.failures == 0 and self.p99_ms <= slo_ms


@dataclass(frozen=True)
class SearchResult:
    slo_ms: float
    max_rps: float  # highest probed rate that met the SLO; 0 when even the lowest did not
    probes: list[ProbeResult]
    flags: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "slo_ms": self.slo_ms,
            "max_rps": self.max_rps,
            "flags": self.flags,
            "probes": [asdict(probe) for probe in self.probes],
        }


def stable_probe(run_once: Callable[[float], ProbeResult], attempts: int) -> Callable[[float], ProbeResult]:
    """Wrap a single measurement so an unstable one, or one whose generator fell behind its schedule (its
    latencies then include the generator's lateness), is repeated, up to ``attempts`` runs in all."""

    def probe(rate: float) -> ProbeResult:
        result = run_once(rate)
        for attempt in range(2, attempts + 1):
            if result.stable and not result.behind_schedule:
                break
            result = run_once(rate)
            result = ProbeResult(**{**asdict(result), "attempts": attempt})
        return result

    return probe


def search_max_rate(
    probe: Callable[[float], ProbeResult],
    low: float,
    high: float,
    slo_ms: float = DEFAULT_SLO_MS,
    probes: int = DEFAULT_PROBES,
) -> SearchResult:
    """Probe ``low``, then ``high``, then bisect between the last pass and the first fail. When ``low``
    already misses, halve it until a rate passes (within the same probe count), then bisect above it."""
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high, got low={low}, high={high}")
    if probes < 2:
        raise ValueError("the search needs at least 2 probes (the two bounds)")
    done: list[ProbeResult] = []
    flags: list[str] = []

    def run(rate: float) -> bool:
        result = probe(rate)
        done.append(result)
        if not result.stable:
            flags.append(f"probe at {rate:.1f} req/s never stable in {result.attempts} attempt(s)")
        if result.behind_schedule:
            flags.append(f"probe at {rate:.1f} req/s: the generator fell behind its schedule")
        return result.passes(slo_ms)

    if run(low):
        passing, failing = low, high
        if run(high):
            flags.append(f"the SLO still held at the highest rate probed ({high:.1f} req/s): a lower bound")
            return SearchResult(slo_ms, high, done, flags)
    else:
        failing, passing = low, 0.0
        while len(done) < probes and not passing:
            if run(failing / 2.0):
                passing = failing / 2.0
            else:
                failing /= 2.0
        if not passing:
            flags.append(f"the SLO was missed already at the lowest rate probed ({failing:.1f} req/s)")
            return SearchResult(slo_ms, 0.0, done, flags)
    while len(done) < probes:
        middle = (passing + failing) / 2.0
        if run(middle):
            passing = middle
        else:
            failing = middle
    return SearchResult(slo_ms, passing, done, flags)
