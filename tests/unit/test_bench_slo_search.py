"""The bounded SLO search, its miss rule and the repeat-until-stable rule, on synthetic probes with a known
answer."""

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from bench.analysis.slo_search import (
    ProbeResult,
    allowed_over,
    binomial_at_least,
    exceeds_quantile,
    search_max_rate,
    stable_probe,
)

THRESHOLD = 63.0  # req/s where the synthetic service's p99 crosses the SLO
REQUESTS = 300


def _result(
    rate: float, over: int, *, failures: int = 0, stable: bool = True, late: bool = False
) -> ProbeResult:
    return ProbeResult(
        rate, p99_ms=150.0 if over > 3 else 50.0, achieved_rps=rate, requests=REQUESTS, over_slo=over,
        failures=failures, stable=stable, behind_schedule=late,
    )  # fmt: skip


def _probe(rate: float, stable: bool = True) -> ProbeResult:
    # past the threshold a tenth of the requests exceed the SLO, below it none do
    return _result(rate, REQUESTS // 10 if rate > THRESHOLD else 0, stable=stable)


@pytest.mark.parametrize("probes", [4, 7, 10])
def test_bisection_lands_within_its_resolution_below_the_threshold(probes: int) -> None:
    calls: list[float] = []

    def probe(rate: float) -> ProbeResult:
        calls.append(rate)
        return _probe(rate)

    low, high = 10.0, 130.0
    result = search_max_rate(probe, low, high, slo_ms=100.0, probes=probes)
    resolution = (high - low) / 2 ** (probes - 2)
    assert len(calls) == probes
    assert THRESHOLD - resolution <= result.max_rps <= THRESHOLD
    assert result.flags == []


def test_a_low_bound_that_misses_is_halved_until_a_rate_passes_then_bisected() -> None:
    calls: list[float] = []

    def probe(rate: float) -> ProbeResult:
        calls.append(rate)
        return _probe(rate)

    result = search_max_rate(probe, 80.0, 100.0, probes=5)
    assert calls == [80.0, 40.0, 60.0, 70.0, 65.0]  # 80 misses, 40 meets, then bisection between them
    assert result.max_rps == 60.0 and result.flags == []


def test_missing_the_slo_at_every_rate_gives_zero_and_names_the_lowest() -> None:
    def never(rate: float) -> ProbeResult:
        return _result(rate, REQUESTS)

    result = search_max_rate(never, 80.0, 100.0, probes=4)
    assert result.max_rps == 0.0 and [probe.rate for probe in result.probes] == [80.0, 40.0, 20.0, 10.0]
    assert result.flags == ["the SLO was missed already at the lowest rate probed (10.0 req/s)"]


def test_meeting_the_slo_at_the_high_bound_is_reported_as_a_lower_bound() -> None:
    result = search_max_rate(_probe, 10.0, 50.0, probes=5)
    assert result.max_rps == 50.0 and "highest" in result.flags[0]


def test_failed_requests_fail_a_probe_even_with_a_good_p99() -> None:
    assert _result(10.0, 0).passes()
    assert not _result(10.0, 0, failures=1).passes()


def test_an_unstable_probe_is_repeated_up_to_the_limit_and_flagged() -> None:
    runs: list[float] = []

    def never_stable(rate: float) -> ProbeResult:
        runs.append(rate)
        return _probe(rate, stable=False)

    result = stable_probe(never_stable, attempts=3)(20.0)
    assert len(runs) == 3 and result.attempts == 3 and not result.stable
    search = search_max_rate(stable_probe(never_stable, attempts=2), 10.0, 130.0, probes=3)
    assert any("never stable" in flag for flag in search.flags)


def test_a_probe_whose_generator_fell_behind_is_repeated() -> None:
    late = iter([True, False])
    runs: list[float] = []

    def generator_late_once(rate: float) -> ProbeResult:
        runs.append(rate)
        return _result(rate, 0, late=next(late))

    result = stable_probe(generator_late_once, attempts=3)(20.0)
    assert len(runs) == 2 and result.attempts == 2 and not result.behind_schedule


def test_a_probe_that_settles_stops_repeating() -> None:
    outcomes = iter([False, True, True])
    runs: list[float] = []

    def settles(rate: float) -> ProbeResult:
        runs.append(rate)
        return _probe(rate, stable=next(outcomes))

    result = stable_probe(settles, attempts=3)(20.0)
    assert result.stable and result.attempts == 2 and len(runs) == 2


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        search_max_rate(_probe, 50.0, 10.0)
    with pytest.raises(ValueError):
        search_max_rate(_probe, 10.0, 50.0, probes=1)


def test_the_binomial_tail_matches_exact_arithmetic_and_survives_large_counts() -> None:
    p = Fraction(1, 100)
    for trials, successes in [(50, 0), (50, 1), (50, 3), (200, 6), (200, 200)]:
        exact = sum(comb(trials, k) * p**k * (1 - p) ** (trials - k) for k in range(successes, trials + 1))
        assert binomial_at_least(trials, successes, 0.01) == pytest.approx(float(exact), abs=1e-12)
    assert binomial_at_least(200, 201, 0.01) == 0.0
    # the reference is scipy.stats.binom.sf(1099, 100_000, 0.01)
    assert binomial_at_least(100_000, 1_100, 0.01) == pytest.approx(0.00091178, rel=1e-4)


def test_a_probe_misses_only_beyond_its_sampling_noise() -> None:
    # 200 requests: 5 over the SLO (a point p99 past it) is still what a p99-on-the-SLO service gives
    assert allowed_over(200) == 5 and not exceeds_quantile(200, 5) and exceeds_quantile(200, 6)
    # the allowance tightens towards 1% as the probe grows
    shares = [allowed_over(n) / n for n in (200, 1_000, 10_000)]
    assert shares == sorted(shares, reverse=True) and 0.01 < shares[-1] < 0.012
    assert exceeds_quantile(0, 0)  # nothing answered


def test_the_rule_rarely_fails_a_service_on_the_slo_and_catches_one_past_it() -> None:
    rng = np.random.default_rng(7)
    probes = 4_000
    on_the_slo = rng.binomial(200, 0.01, probes)  # true p99 exactly the SLO, 200-request probes
    point_p99_misses = np.mean(on_the_slo >= 3)  # the 99th percentile of 200 lies past the 2nd slowest
    rule_misses = np.mean([exceeds_quantile(200, int(over)) for over in on_the_slo])
    assert point_p99_misses > 0.25 and rule_misses <= 0.05
    past_it = rng.binomial(1_000, 0.03, 500)  # 3% over the SLO in 1,000-request probes
    assert np.mean([exceeds_quantile(1_000, int(over)) for over in past_it]) > 0.95
