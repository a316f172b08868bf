"""The queueing model against closed-form results."""

import math

import numpy as np
import pytest

from bench.analysis import queueing


def test_mm1_mean_wait_is_rho_over_mu_minus_lambda() -> None:
    assert queueing.mm1_mean_wait(rate=40.0, service_rate=50.0) == pytest.approx(0.8 / 10.0)


def test_mm1_sojourn_p99_is_minus_ln_001_over_mu_minus_lambda() -> None:
    assert queueing.mm1_sojourn_quantile(40.0, 50.0, 0.99) == pytest.approx(-math.log(0.01) / 10.0)


def test_md1_mean_wait_is_pollaczek_khinchine() -> None:
    # rho = 0.5, D = 20 ms: rho * D / (2 (1 - rho)) = 10 ms
    assert queueing.md1_mean_wait(25.0, 0.020) == pytest.approx(0.010)


def test_erlang_c_known_value() -> None:
    assert queueing.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert queueing.erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho


@pytest.mark.parametrize("rho", [0.3, 0.7, 0.9])
def test_mmc_with_one_server_is_mm1(rho: float) -> None:
    mu = 50.0
    assert queueing.mmc_sojourn_quantile(rho * mu, mu, 1, 0.99) == pytest.approx(
        queueing.mm1_sojourn_quantile(rho * mu, mu, 0.99), rel=1e-6
    )


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_simulated_mm1_matches_its_closed_forms(rho: float) -> None:
    service_s = 0.02
    sojourns = queueing.simulate_sojourns(
        rho / service_s, queueing.exponential(service_s), customers=1_000_000, seed=1
    )
    assert np.quantile(sojourns, 0.99) == pytest.approx(
        queueing.mm1_sojourn_quantile(rho / service_s, 1 / service_s, 0.99), rel=0.06
    )
    assert np.mean(sojourns) - service_s == pytest.approx(
        queueing.mm1_mean_wait(rho / service_s, 1 / service_s), rel=0.06
    )


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_simulated_md1_mean_wait_matches_pollaczek_khinchine(rho: float) -> None:
    service_s = 0.02
    sojourns = queueing.simulate_sojourns(rho / service_s, queueing.deterministic(service_s), seed=2)
    assert np.mean(sojourns) - service_s == pytest.approx(
        queueing.md1_mean_wait(rho / service_s, service_s), rel=0.06
    )


def test_simulated_mm2_mean_wait_matches_erlang_c() -> None:
    service_s, servers, rate = 0.02, 2, 80.0  # rho = 0.8
    sojourns = queueing.simulate_sojourns(rate, queueing.exponential(service_s), servers=servers, seed=3)
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
        queueing.mm1_mean_wait(50.0, 50.0)
