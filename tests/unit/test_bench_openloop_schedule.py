"""The open-loop schedule (seeded Poisson arrivals, bounded) and the verdict on how late requests left."""

import numpy as np
import pytest

from bench.load.arrivals import adherence, bounded_schedule, poisson_arrivals


def test_poisson_arrivals_have_the_rate_and_the_spread_of_a_poisson_process() -> None:
    rate, horizon = 200.0, 100.0
    offsets = poisson_arrivals(rate, horizon, seed=7)
    expected = rate * horizon
    assert abs(len(offsets) - expected) < 4 * np.sqrt(expected)  # Poisson count: sd = sqrt(mean)
    gaps = np.diff(offsets)
    assert np.mean(gaps) == pytest.approx(1 / rate, rel=0.03)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(1.0, abs=0.05)  # exponential gaps: CV = 1
    assert np.all(gaps >= 0) and offsets[-1] < horizon


def test_the_schedule_is_reproducible_from_its_seed() -> None:
    assert np.array_equal(poisson_arrivals(30, 10, seed=1), poisson_arrivals(30, 10, seed=1))
    assert not np.array_equal(poisson_arrivals(30, 10, seed=1), poisson_arrivals(30, 10, seed=2))


def test_a_schedule_longer_than_its_first_chunk_still_reaches_the_horizon() -> None:
    offsets = poisson_arrivals(1.0, 2000.0, seed=3)
    assert offsets[-1] > 1900.0


def test_bounded_schedule_caps_the_measured_requests_but_keeps_the_warmup() -> None:
    offsets = bounded_schedule(100.0, warmup_s=2.0, duration_s=10.0, seed=0, max_measured=50)
    assert np.count_nonzero(offsets >= 2.0) == 50
    assert np.count_nonzero(offsets < 2.0) > 100
    unbounded = bounded_schedule(100.0, 2.0, 10.0, seed=0, max_measured=None)
    assert np.count_nonzero(unbounded >= 2.0) > 800


@pytest.mark.parametrize("rate, horizon", [(0, 1), (1, 0), (-1, 5)])
def test_nonsense_rates_are_refused(rate: float, horizon: float) -> None:
    with pytest.raises(ValueError):
        poisson_arrivals(rate, horizon, seed=0)


def test_adherence_counts_late_sends_and_flags_a_generator_behind_schedule() -> None:
    on_time = adherence([0.1] * 990 + [50.0] * 10, capped=0, late_after_ms=10.0, behind_fraction=0.02)
    assert on_time.late == 10 and on_time.late_fraction == pytest.approx(0.01)
    assert on_time.lag_max_ms == 50.0 and not on_time.behind_schedule
    behind = adherence([0.1] * 900 + [50.0] * 100, capped=0, late_after_ms=10.0, behind_fraction=0.02)
    assert behind.behind_schedule and behind.late == 100


def test_a_request_held_back_by_the_in_flight_cap_flags_the_run() -> None:
    assert adherence([0.1] * 100, capped=1).behind_schedule
    assert adherence([], capped=0).requests == 0
