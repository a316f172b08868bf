import math

import pytest

from bench.stats import latency_summary, percentile, ratio, spread


def test_percentile_interpolates_linearly_between_ranks() -> None:
    samples = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert percentile(samples, 50) == pytest.approx(5.5)
    assert percentile(samples, 90) == pytest.approx(9.1)
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 10.0


def test_percentile_is_order_independent_and_nan_when_empty() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_of_one_to_thousand() -> None:
    summary = latency_summary([float(value) for value in range(1, 1001)])
    assert summary["p50"] == pytest.approx(500.5)
    assert summary["p99"] == pytest.approx(990.01)
    assert summary["p99.9"] == pytest.approx(999.001)
    assert summary["max"] == 1000.0
    assert summary["mean"] == pytest.approx(500.5)
    assert summary["count"] == 1000


def test_spread_is_median_with_min_max_ignoring_missing_values() -> None:
    result = spread([12.0, 10.0, float("nan"), 11.0, 30.0])
    assert (result.median, result.low, result.high, result.n) == (11.5, 10.0, 30.0, 4)
    empty = spread([float("nan")])
    assert empty.n == 0 and math.isnan(empty.median)


def test_ratio_against_baseline() -> None:
    assert ratio(30.0, 10.0) == 3.0
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(float("nan"), 2.0))
