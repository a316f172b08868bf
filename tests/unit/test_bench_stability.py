"""The stability rule (last 3 windows' throughput and p99 within 10%) on synthetic windows."""

import math

import pytest

from bench.analysis.stability import MIN_WINDOW_REQUESTS, Window, assess, window_plan, windows_of, within


def _windows(throughputs: list[float], p99s: list[float]) -> list[Window]:
    return [Window(float(i), t, p, 10) for i, (t, p) in enumerate(zip(throughputs, p99s, strict=True))]


def test_agreeing_last_windows_are_stable_even_after_a_slow_start() -> None:
    verdict = assess(_windows([50, 95, 100, 105], [300, 20, 21, 19]))
    assert verdict.stable, verdict.reason


def test_a_growing_p99_is_unstable() -> None:
    verdict = assess(_windows([100, 100, 100, 100], [20, 40, 80, 160]))
    assert not verdict.stable and "p99" in verdict.reason and "throughput" not in verdict.reason


def test_a_throughput_swing_beyond_ten_percent_is_unstable() -> None:
    verdict = assess(_windows([100, 100, 80, 100], [20, 20, 20, 20]))
    assert not verdict.stable and "throughput" in verdict.reason


def test_fewer_windows_than_the_rule_needs_is_not_stable() -> None:
    assert not assess(_windows([100, 100], [20, 20])).stable


def test_within_is_relative_to_the_mean() -> None:
    assert within([100, 109, 91], 0.10)
    assert not within([100, 115, 85], 0.10)
    assert not within([1.0, math.nan, 1.0], 0.10)
    assert within([0.0, 0.0, 0.0], 0.10)


def test_windows_count_completions_and_p99_by_scheduled_time() -> None:
    # 10 requests per second for 3 s, each taking 50 ms; in the second window they take 500 ms.
    scheduled = [i / 10 for i in range(30)]
    latencies = [500.0 if 1.0 <= s < 2.0 else 50.0 for s in scheduled]
    windows = windows_of(scheduled, latencies, [True] * 30, start_s=0.0, end_s=3.0, window_s=1.0)
    assert [w.requests for w in windows] == [10, 10, 10]
    assert windows[0].p99_ms == 50.0 and windows[1].p99_ms == 500.0
    # Completions: the slow half sent at 1.5-1.9 s finishes in the third window, beside its own 10.
    assert [w.throughput for w in windows] == [10.0, 5.0, 15.0]


def test_failures_count_for_neither_throughput_nor_p99() -> None:
    windows = windows_of([0.1, 0.2, 0.3], [10.0, 9000.0, 10.0], [True, False, True], 0.0, 1.0, 1.0)
    assert windows[0].throughput == 2.0 and windows[0].p99_ms < 11.0


def test_a_run_planned_for_three_windows_gets_three_despite_float_rounding() -> None:
    duration, window = window_plan(rate=7.08, duration_s=12.0)
    assert duration == pytest.approx(3 * window) and window * 7.08 >= MIN_WINDOW_REQUESTS
    scheduled = [i / 7.08 for i in range(int(duration * 7.08))]
    windows = windows_of(scheduled, [10.0] * len(scheduled), [True] * len(scheduled), 0.0, duration, window)
    assert len(windows) == 3


def test_window_plan_keeps_short_windows_at_high_rates_and_caps_the_stretch() -> None:
    assert window_plan(rate=100.0, duration_s=10.0) == (10.0, 2.0)
    duration, _ = window_plan(rate=0.5, duration_s=10.0)
    assert duration == 40.0
