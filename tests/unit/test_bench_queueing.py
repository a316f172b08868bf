"""The queueing model against closed-form results."""

import math
from collections.abc import Callable

import numpy as np
import pytest

from bench.analysis import queueing

# Textbook closed forms the model and the simulation are checked against (oracles, not bench code).


def mm1_mean_wait(rate: float, service_rate: float) -> float:
    """Mean time in queue of M/M/1: rho / (mu - lambda)."""
    return (rate / service_rate) / (service_rate - rate)


def mm1_sojourn_quantile(rate: float, service_rate: float, q: float) -> float:
    """The M/M/1 time in system is exponential with rate mu - lambda."""
    return -math.log(1.0 - q) / (service_rate - rate)


def md1_mean_wait(rate: float, service_s: float) -> float:
    """Pollaczek-Khinchine for deterministic service: rho * D / (2 (1 - rho))."""
    rho = rate * service_s
    return rho * service_s / (2.0 * (1.0 - rho))


def exponential(service_s: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    """Exponential service times for simulate_sojourns (M/M/c)."""
    return lambda rng, size: rng.exponential(service_s, size=size)


def test_the_oracles_agree_with_known_values() -> None:
    assert mm1_mean_wait(rate=40.0, service_rate=50.0) == pytest.approx(0.8 / 10.0)
    assert mm1_sojourn_quantile(40.0, 50.0, 0.99) == pytest.approx(-math.log(0.01) / 10.0)
    assert md1_mean_wait(25.0, 0.020) == pytest.approx(0.010)  # rho = 0.5, D = 20 ms


def test_erlang_c_known_value() -> None:
    assert queueing.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert queueing.erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho


@pytest.mark.parametrize("rho", [0.3, 0.7, 0.9])
def test_mmc_with_one_server_is_mm1(rho: float) -> None:
    mu = 50.0
    assert queueing.mmc_sojourn_quantile(rho * mu, mu, 1, 0.99) == pytest.approx(
        mm1_sojourn_quantile(rho * mu, mu, 0.99), rel=1e-6
    )


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_simulated_mm1_matches_its_closed_forms(rho: float) -> None:
    service_s = 0.02
    sojourns = queueing.simulate_sojourns(
        rho / service_s, exponential(service_s), customers=1_000_000, seed=1
    )
    assert np.quantile(sojourns, 0.99) == pytest.approx(
        mm1_sojourn_quantile(rho / service_s, 1 / service_s, 0.99), rel=0.06
    )
    assert np.mean(sojourns) - service_s == pytest.approx(
        mm1_mean_wait(rho / service_s, 1 / service_s), rel=0.06
    )


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_simulated_md1_mean_wait_matches_pollaczek_khinchine(rho: float) -> None:
    service_s = 0.02
    sojourns = queueing.simulate_sojourns(rho / service_s, queueing.deterministic(service_s), seed=2)
    assert np.mean(sojourns) - service_s == pytest.approx(md1_mean_wait(rho / service_s, service_s), rel=0.06)


def test_simulated_mm2_mean_wait_matches_erlang_c() -> None:
    service_s, servers, rate = 0.02, 2, 80.0  # rho = 0.8
    sojourns = queueing.simulate_sojourns(rate, exponential(service_s), servers=servers, seed=3)
    expected_wait = queueing.erlang_c(servers, rate * service_s) / (servers / service_s - rate)
    assert np.mean(sojourns) - service_s == pytest.approx(expected_wait, rel=0.08)
    # and the M/M/c tail formula agrees with the same simulation
    assert np.quantile(sojourns, 0.99) * 1000 == pytest.approx(
        queueing.predicted_quantile_ms("M/M/c", rate, service_s * 1000, servers), rel=0.08
    )


def test_deterministic_service_has_a_shorter_tail_than_exponential() -> None:
    md1 = queueing.predicted_quantile_ms("M/D/c", 35.0, 20.0)
    mm1 = queueing.predicted_quantile_ms("M/M/c", 35.0, 20.0)
    assert 20.0 < md1 < mm1


def test_at_or_above_saturation_the_prediction_is_infinite() -> None:
    assert math.isinf(queueing.predicted_quantile_ms("M/D/c", 50.0, 20.0))
    assert math.isfinite(queueing.predicted_quantile_ms("M/D/c", 90.0, 20.0, servers=2))


def test_max_rate_under_slo_for_mm1_is_the_closed_form() -> None:
    # p99 = ln(100) / (mu - lambda) <= SLO  <=>  lambda <= mu - ln(100) / SLO
    expected = 50.0 - math.log(100) / 0.1
    assert queueing.max_rate_under_slo("M/M/c", 20.0, 100.0) == pytest.approx(expected, rel=1e-3)
    assert queueing.max_rate_under_slo("M/D/c", 200.0, 100.0) == 0.0


def test_unknown_model_and_unstable_queues_are_refused() -> None:
    with pytest.raises(ValueError):
        queueing.predicted_quantile_ms("G/G/1", 1.0, 10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        queueing.erlang_c(1, 1.0)  # utilization 1: no steady state
