"""Max sustainable RPS under a latency SLO: a bounded bisection over offered rates.

The search only decides which rate to try next; ``probe(rate)`` runs the measurement (an open-loop run in
the bench, a synthetic function in the tests). A probe misses the SLO when a request failed, or when more of
its requests took longer than the SLO than sampling noise explains for a service whose p99 sits exactly on
it (see ``exceeds_quantile``). An unstable probe, or one whose generator fell behind, is repeated up to
``attempts`` times and keeps its flag if it never settles. A probe holds at least SLO_PROBE_REQUESTS requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_SLO_MS = 100.0
DEFAULT_PROBES = 7
DEFAULT_ATTEMPTS = 3
# A probe holds at least this many requests, so its p99 lies between the 2nd and 3rd slowest, not on the
# maximum (one late request would otherwise decide a low-rate probe).
SLO_PROBE_REQUESTS = 200
SLO_QUANTILE = 0.99  # the SLO bounds the p99
# A probe misses only when a service whose true p99 equals the SLO would put that many requests over it in
# fewer than 5% of probes of that size. The point p99 of 200 requests misses for such a service in about a
# third of probes, and every false miss sends the bisection below the service's real capacity.
SLO_MISS_CONFIDENCE = 0.95


def binomial_at_least(trials: int, successes: int, probability: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, probability)."""
    if successes <= 0:
        return 1.0
    if successes > trials:
        return 0.0

    def log_mass(k: int) -> float:  # in logs: the terms over- and underflow floats at large trial counts
        return (
            math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1)
            + k * math.log(probability) + (trials - k) * math.log1p(-probability)
        )  # fmt: skip

    below = math.fsum(math.exp(log_mass(k)) for k in range(successes))
    return min(1.0, max(0.0, 1.0 - below))


def exceeds_quantile(
    requests: int, over: int, quantile: float = SLO_QUANTILE, confidence: float = SLO_MISS_CONFIDENCE
) -> bool:
    """True when ``over`` of ``requests`` beyond a bound show, at ``confidence``, that the ``quantile`` of the
    latency lies beyond it (a one-sided binomial test); a probe that answered nothing exceeds it."""
    if requests <= 0:
        return True
    return binomial_at_least(requests, over, 1.0 - quantile) < 1.0 - confidence


def allowed_over(
    requests: int, quantile: float = SLO_QUANTILE, confidence: float = SLO_MISS_CONFIDENCE
) -> int:
    """The most requests of ``requests`` that may exceed the bound before the quantile is shown beyond it."""
    over = 0
    while over < requests and not exceeds_quantile(requests, over + 1, quantile, confidence):
        over += 1
    return over


@dataclass(frozen=True)
class ProbeResult:
    rate: float
    p99_ms: float
    achieved_rps: float
    requests: int  # answered in the measured part of the probe
    over_slo: int  # of those, how many took longer than the SLO
    failures: int
    stable: bool
    behind_schedule: bool
    attempts: int = 1
    detail: dict[str, Any] = field(default_factory=dict)

    def passes(self) -> bool:
        return self.failures == 0 and not exceeds_quantile(self.requests, self.over_slo)


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
        return result.passes()

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
