"""The bounded SLO search and the repeat-until-stable rule, on synthetic probes with a known answer."""

import pytest

from bench.analysis.slo_search import ProbeResult, search_max_rate, stable_probe

THRESHOLD = 63.0  # req/s where the synthetic service's p99 crosses the SLO


def _probe(rate: float, stable: bool = True) -> ProbeResult:
    p99 = 100.0 * rate / THRESHOLD  # p99 grows with the rate and equals 100 ms at the threshold
    return ProbeResult(rate, p99, rate, 0, stable, False)


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
        return ProbeResult(rate, 500.0, rate, 0, True, False)

    result = search_max_rate(never, 80.0, 100.0, probes=4)
    assert result.max_rps == 0.0 and [probe.rate for probe in result.probes] == [80.0, 40.0, 20.0, 10.0]
    assert result.flags == ["the SLO was missed already at the lowest rate probed (10.0 req/s)"]


def test_meeting_the_slo_at_the_high_bound_is_reported_as_a_lower_bound() -> None:
    result = search_max_rate(_probe, 10.0, 50.0, probes=5)
    assert result.max_rps == 50.0 and "highest" in result.flags[0]


def test_failed_requests_fail_a_probe_even_with_a_good_p99() -> None:
    assert not ProbeResult(10.0, 5.0, 10.0, failures=1, stable=True, behind_schedule=False).passes(100.0)


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
        return ProbeResult(rate, 50.0, rate, 0, True, behind_schedule=next(late))

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
