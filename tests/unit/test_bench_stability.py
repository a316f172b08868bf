"""The stability rule on synthetic open-loop runs: Poisson arrivals through a simulated FIFO server, seeded.

A steady server passes (also in >= 95% of 200 seeds at 30 requests a window, where perf_analyzer's 10%
rule failed almost every one), a slowing one fails on drift, one with periodic stalls fails on stalls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from bench.analysis.stability import (
    MIN_WINDOW_REQUESTS,
    Stability,
    Window,
    assess,
    busy_gaps,
    chi2_sf,
    quantile_test,
    t_critical,
    tail_percentile,
    window_plan,
    windows_of,
)


@dataclass(frozen=True)
class Server:
    service_ms: float = 50.0
    slowdown: float = 0.0  # the service time grows by this fraction of itself over the run
    stall_every_s: float = 0.0
    stall_s: float = 0.0


def simulate(seed: int, rate: float, duration_s: float, server: Server) -> tuple[np.ndarray, np.ndarray]:
    """(scheduled offsets, latencies from the schedule in ms) of one run through a FIFO single server."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, int(rate * duration_s * 2) + 20))
    arrivals = arrivals[arrivals < duration_s]
    service_s = server.service_ms / 1000.0 * (1.0 + server.slowdown * arrivals / duration_s)
    service_s *= rng.uniform(0.9, 1.1, arrivals.size)
    latencies, free = [], 0.0
    for arrival, service in zip(arrivals.tolist(), service_s.tolist(), strict=True):
        start = max(arrival, free)
        if server.stall_every_s:
            phase = start % server.stall_every_s
            if phase > server.stall_every_s - server.stall_s:  # frozen: resumes at the period's end
                start += server.stall_every_s - phase
        free = start + service
        latencies.append((free - arrival) * 1000.0)
    return arrivals, np.asarray(latencies)


def judge(seed: int, rate: float, duration_s: float, server: Server) -> Stability:
    duration, window_s = window_plan(rate, duration_s)
    scheduled, latencies = simulate(seed, rate, duration, server)
    return assess(windows_of(scheduled, latencies, [True] * len(scheduled), 0.0, duration, window_s))


def failed(verdict: Stability) -> set[str]:
    return {check.name for check in verdict.checks if not check.passed}


# --- the verdicts -------------------------------------------------------------------------------------


def test_a_steady_server_at_half_load_is_stable() -> None:
    verdict = judge(1, rate=10.0, duration_s=15.0, server=Server(50.0))
    assert verdict.stable, verdict.reason
    assert verdict.reason.startswith("stable: windows 3-5 agree") and "p90" in verdict.reason
    assert {check.name for check in verdict.checks} == {"throughput", "latency", "drift", "stalls"}


def test_poisson_noise_alone_at_30_requests_a_window_passes_in_at_least_95_percent_of_seeds() -> None:
    # 10 req/s into a 50 ms server (half load), 3 s windows: 30 requests expected in each.
    verdicts = [judge(seed, rate=10.0, duration_s=15.0, server=Server(50.0)) for seed in range(200)]
    assert all(len(v.windows) == 5 for v in verdicts)
    assert 25 <= np.mean([len(w.latencies_ms) for v in verdicts for w in v.windows]) <= 35
    assert sum(v.stable for v in verdicts) >= 0.95 * len(verdicts)


def test_a_server_slowing_down_fails_on_drift() -> None:
    verdict = judge(2, rate=10.0, duration_s=15.0, server=Server(50.0, slowdown=1.5))
    assert not verdict.stable and "drift" in failed(verdict)
    assert "median busy gap +" in verdict.reason and "across the run" in verdict.reason


def test_a_server_with_periodic_stalls_fails_on_stalls() -> None:
    verdict = judge(3, rate=40.0, duration_s=6.0, server=Server(5.0, stall_every_s=2.3, stall_s=0.3))
    assert not verdict.stable and "stalls" in failed(verdict)
    assert "longest busy gap of windows 2-5: window" in verdict.reason


def test_slowing_and_stalling_servers_fail_in_most_seeds() -> None:
    slowing = [judge(seed, 10.0, 15.0, Server(50.0, slowdown=1.5)).stable for seed in range(50)]
    stalling = [
        judge(seed, 40.0, 6.0, Server(5.0, stall_every_s=2.3, stall_s=0.3)).stable for seed in range(50)
    ]
    assert sum(slowing) <= 5 and sum(stalling) <= 5


def test_a_slow_first_window_alone_is_not_drift() -> None:
    rng = np.random.default_rng(4)
    windows = [
        Window(float(i), 1.0, 100, tuple(rng.uniform(18, 22, 100) * (15 if i == 0 else 1)), 100)
        for i in range(5)
    ]
    verdict = assess(windows)
    assert verdict.stable, verdict.reason


def test_fewer_windows_than_the_rule_needs_is_not_stable() -> None:
    windows = [Window(float(i), 1.0, 30, (10.0,) * 30, 30) for i in range(2)]
    verdict = assess(windows)
    assert not verdict.stable and verdict.reason == "only 2 window(s), 3 needed"


def test_a_throughput_difference_beyond_the_poisson_tolerance_is_unstable() -> None:
    latencies = tuple(np.linspace(9.0, 11.0, 400))
    windows = [
        Window(float(i), 1.0, count, latencies, 400) for i, count in enumerate([400, 400, 400, 400, 250])
    ]
    verdict = assess(windows)
    assert failed(verdict) == {"throughput"}
    # 400 vs 250 completions: 46% apart; allowed max(10%, 3.29 x sqrt(1/400 + 1/250)) = 27%.
    assert "windows 3 and 5 differ by more than the allowed 27% (46%)" in verdict.reason
    assert "max(10%, 3.29 x sqrt(1/n1 + 1/n2))" in verdict.reason


def test_the_compared_percentile_depends_on_the_requests_a_window_holds() -> None:
    assert tail_percentile(200) == 99.0 and tail_percentile(199) == 90.0 and tail_percentile(20) == 90.0
    assert tail_percentile(19) == 50.0
    big = judge(5, rate=100.0, duration_s=10.0, server=Server(4.0))
    latency = next(check for check in big.checks if check.name == "latency")
    assert latency.statistic == "p99" and big.stable, big.reason


def test_the_verdict_serializes_its_checks_and_window_summaries() -> None:
    data = judge(1, rate=10.0, duration_s=15.0, server=Server(50.0)).to_dict()
    assert data["stable"] and [c["name"] for c in data["checks"]] == [
        "throughput",
        "latency",
        "drift",
        "stalls",
    ]
    assert set(data["windows"][0]) >= {
        "start_s",
        "requests",
        "completed",
        "throughput",
        "p99_ms",
        "max_gap_ms",
    }
    assert "latencies_ms" not in data["windows"][0]


# --- the statistics -----------------------------------------------------------------------------------


def test_chi_square_and_t_tails_match_their_tables() -> None:
    assert chi2_sf(10.828, 1) == pytest.approx(0.001, rel=1e-3)
    assert chi2_sf(13.816, 2) == pytest.approx(0.001, rel=1e-3)
    assert chi2_sf(16.266, 3) == pytest.approx(0.001, rel=1e-3)
    assert chi2_sf(0.0, 4) == 1.0
    assert t_critical(3) == pytest.approx(12.924, rel=1e-3) and t_critical(10) == pytest.approx(
        4.587, rel=1e-3
    )


def test_the_quantile_test_counts_requests_above_the_pooled_percentile() -> None:
    same = [list(range(30)), list(range(30)), list(range(30))]
    assert quantile_test(same, 90.0)[2] == pytest.approx(1.0)
    shifted = [list(range(30)), list(range(30)), list(range(100, 130))]
    above, _, p = quantile_test(shifted, 90.0)
    assert above == [0, 0, 9] and p < 1e-4
    assert quantile_test([[5.0] * 10, [5.0] * 10], 90.0) == ([0, 0], 0.0, 1.0)


def test_busy_gaps_are_service_times_of_a_fifo_server() -> None:
    # Arrivals at 0, 0.01, 0.5 s; 100 ms each: the second waits behind the first, the third finds it idle.
    scheduled = np.array([0.0, 0.01, 0.5])
    starts, gaps = busy_gaps(scheduled, np.array([0.1, 0.2, 0.6]))
    assert starts.tolist() == [0.0, 0.1, 0.5] and gaps == pytest.approx([100.0, 100.0, 100.0])


# --- the windows --------------------------------------------------------------------------------------


def test_windows_count_completions_and_latencies_by_scheduled_time() -> None:
    # 10 requests per second for 3 s, each taking 50 ms; in the second window they take 500 ms.
    scheduled = [i / 10 for i in range(30)]
    latencies = [500.0 if 1.0 <= s < 2.0 else 50.0 for s in scheduled]
    windows = windows_of(scheduled, latencies, [True] * 30, start_s=0.0, end_s=3.0, window_s=1.0)
    assert [w.requests for w in windows] == [10, 10, 10]
    assert windows[0].percentile(99) == 50.0 and windows[1].percentile(99) == 500.0
    # Completions: the slow half sent at 1.5-1.9 s finishes in the third window, beside its own 10.
    assert [w.throughput for w in windows] == [10.0, 5.0, 15.0]


def test_failures_count_for_neither_throughput_nor_latency() -> None:
    windows = windows_of([0.1, 0.2, 0.3], [10.0, 9000.0, 10.0], [True, False, True], 0.0, 1.0, 1.0)
    assert windows[0].throughput == 2.0 and windows[0].latencies_ms == (10.0, 10.0)
    assert windows[0].requests == 3


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


def test_an_empty_window_throughput_is_zero_not_nan() -> None:
    assert Window(0.0, 1.0, 0, (), 0).throughput == 0.0
    assert math.isnan(Window(0.0, 1.0, 0, (), 0).percentile(50))
