"""The soak verdict on constructed samples: a leak fails, flat memory passes, bounded steps from concurrency
records are not a leak; trims and regrowth through the judged half, or blocks too noisy to place the slope
under the bound, are inconclusive; growing file descriptors or threads fail; a short window is inconclusive.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.soak.plan import default_warmup_s, parse_duration
from bench.soak.records import TreeSample, Verdict
from bench.soak.verdict import (
    PER_10K,
    RSS_BOUND_MB_PER_10K,
    RSS_NOISE_MB,
    RSS_SLOPE_Z,
    Fits,
    Served,
    judge,
    min_window_requests,
)

RATE = 30.0  # requests per second
DURATION_S = 600.0
INTERVAL_S = 2.0
BASE_RSS = 400e6
START = 1_000_000.0


def _served(rate: float = RATE, duration_s: float = DURATION_S, service_s: float = 0.02) -> Served:
    sent = START + np.arange(0.0, duration_s, 1.0 / rate)
    return Served.of(sent, sent + service_s, [True] * sent.size)


def _samples(
    rss_per_request: float = 0.0,
    fds_per_10k: float = 0.0,
    threads_per_10k: float = 0.0,
    noise_mb: float = 0.15,  # between steps, real RSS moved <= 0.08 MB sd from sample to sample (soak.json)
    steps: dict[float, float] | None = None,
    seed: int = 0,
) -> list[TreeSample]:
    """Samples every 2 s from before the load (START - 1) to after it; ``steps``: {time_s: MB added}."""
    rng = np.random.default_rng(seed)
    samples = []
    for t in np.arange(-1.0, DURATION_S + 4.0, INTERVAL_S):
        served = min(max(t, 0.0), DURATION_S) * RATE
        rss = BASE_RSS + rss_per_request * served + rng.uniform(-noise_mb, noise_mb) * 1e6
        rss += sum(mb * 1e6 for at, mb in (steps or {}).items() if t >= at)
        sockets = 3 + (int(rng.integers(5, 30)) if 0 <= t <= DURATION_S else 0)
        other = 22 + int(fds_per_10k * served / 1e4)
        threads = 10 + int(rng.integers(0, 3)) + int(threads_per_10k * served / 1e4)
        samples.append(TreeSample(t_unix=START + t, pids=[42], rss_bytes=int(rss), fds=other + sockets,
                                  socket_fds=sockets, threads=threads))  # fmt: skip
    return samples


def _verdict(
    samples: list[TreeSample], served: Served | None = None, warmup_s: float = 60.0
) -> tuple[Fits, Verdict]:
    served = served or _served()
    return judge(samples, served, START + warmup_s, float(served.done.max()), max_in_flight=64)


def _status(verdict: Verdict, name: str) -> str:
    return next(check.status for check in verdict.checks if check.name == name)


def test_flat_memory_passes_with_a_slope_near_zero() -> None:
    fits, verdict = _verdict(_samples())
    assert verdict.status == "pass", verdict.checks
    assert abs(fits.rss.per_10k_requests) < 0.5 * RSS_BOUND_MB_PER_10K
    assert fits.window_requests > min_window_requests()


def test_flat_memory_with_its_blocks_spread_over_the_bound_is_inconclusive_not_passed() -> None:
    # Sample-to-sample jitter of +-0.5 MB, several times what the soaks measured: the median is under the
    # bound, but its blocks disagree so much that their upper bound reaches over it.
    fits, verdict = _verdict(_samples(noise_mb=0.5))
    assert abs(fits.rss.per_10k_requests) < RSS_BOUND_MB_PER_10K, fits.rss
    assert fits.rss.per_10k_requests + RSS_SLOPE_Z * fits.rss.standard_error_per_10k > RSS_BOUND_MB_PER_10K
    assert _status(verdict, "rss_slope") == "inconclusive" and verdict.status == "inconclusive"


def test_a_leak_of_a_few_hundred_bytes_per_request_fails() -> None:
    fits, verdict = _verdict(_samples(rss_per_request=300.0))  # 3 MB per 10k requests
    assert _status(verdict, "rss_slope") == "fail" and verdict.status == "fail"
    assert fits.rss.per_10k_requests == pytest.approx(3.0, rel=0.2)  # later half: fewer samples


def test_allocator_steps_and_a_trim_are_not_a_leak_but_a_leak_under_them_is() -> None:
    # A burst grows the heap 110 MB at 250 s, glibc trims it back at 450 s: a one-line fit calls that a leak.
    steps = {250.0: 110.0, 450.0: -110.0}
    fits, verdict = _verdict(_samples(steps={250.0: 110.0}))
    assert _status(verdict, "rss_slope") == "pass", fits.rss
    assert fits.rss_raw_per_10k > RSS_BOUND_MB_PER_10K
    fits, verdict = _verdict(_samples(steps=steps))
    assert _status(verdict, "rss_slope") == "pass", fits.rss
    assert abs(fits.rss.per_10k_requests) < 0.5 * RSS_BOUND_MB_PER_10K
    fits, verdict = _verdict(_samples(rss_per_request=300.0, steps=steps))
    assert _status(verdict, "rss_slope") == "fail"
    assert fits.rss.per_10k_requests == pytest.approx(3.0, rel=0.2)


def _with_allocator_profile(samples: list[TreeSample], knots: list[tuple[float, float]]) -> list[TreeSample]:
    """Adds MB above the base, linear between the (time_s, MB) knots: a ramp is regrowth, a drop a trim."""
    times, megabytes = zip(*knots, strict=True)
    for sample in samples:
        sample.rss_bytes += int(np.interp(sample.t_unix - START, times, megabytes) * 1e6)
    return samples


def test_a_later_half_that_trims_and_regrows_is_inconclusive_not_a_leak() -> None:
    # The heap regrows 5-10 MB between trims right through the judged later half (330-600 s): four or five
    # of the eight blocks rise steeply, so their median is well over the bound, and their spread says so.
    sawtooth = [(0, 69), (330, 69), (332, 46), (380, 52), (382, 42), (440, 50), (442, 42), (500, 47),
                (502, 41), (560, 46), (562, 41), (604, 43)]  # fmt: skip
    fits, verdict = _verdict(_with_allocator_profile(_samples(), sawtooth))
    noise_slope = RSS_NOISE_MB / fits.rss_requests * PER_10K
    assert fits.rss.per_10k_requests > 5 * max(RSS_BOUND_MB_PER_10K, noise_slope), fits.rss  # median: fail
    assert fits.rss.standard_error_per_10k > fits.rss.per_10k_requests / RSS_SLOPE_Z, fits.rss
    assert _status(verdict, "rss_slope") == "inconclusive" and verdict.status == "inconclusive"
    # The same leak as above, alone, is told apart from its blocks' agreement: a tight standard error.
    fits, verdict = _verdict(_samples(rss_per_request=300.0))
    assert fits.rss.standard_error_per_10k < 0.5 * fits.rss.per_10k_requests, fits.rss
    assert _status(verdict, "rss_slope") == "fail"


def test_growing_file_descriptors_fail_and_a_pool_that_fills_once_does_not() -> None:
    _, verdict = _verdict(_samples(fds_per_10k=10.0))  # one descriptor per 1,000 requests
    assert _status(verdict, "other_fds_growth") == "fail"
    pool = _samples()
    for sample in pool:
        if sample.t_unix >= START + 120:  # four more descriptors once, early: a pool filling up, then flat
            sample.fds += 4
    _, verdict = _verdict(pool)
    assert _status(verdict, "other_fds_growth") == "pass"


def test_growing_threads_fail() -> None:
    _, verdict = _verdict(_samples(threads_per_10k=5.0))
    assert _status(verdict, "threads_growth") == "fail"


def test_errors_above_the_fraction_and_a_replaced_worker_fail() -> None:
    served = _served()
    ok = served.ok.copy()
    ok[:50] = False  # 50 of 18,000: above 1 in 1,000
    _, verdict = _verdict(_samples(), Served(served.sent, served.done, ok))
    assert _status(verdict, "errors") == "fail"
    samples = _samples()
    samples[-5].pids = [43]
    _, verdict = _verdict(samples)
    assert _status(verdict, "process_tree_stable") == "fail"


def test_sockets_beyond_the_generator_cap_or_left_open_fail() -> None:
    samples = _samples()
    samples[100].socket_fds = samples[100].fds = 3 + 64 + 5
    _, verdict = _verdict(samples)
    assert _status(verdict, "sockets_bounded") == "fail"
    samples = _samples()
    samples[-1].socket_fds += 10
    _, verdict = _verdict(samples)
    assert _status(verdict, "sockets_released") == "fail"


def test_a_service_that_fell_behind_the_rate_is_inconclusive_whatever_its_slopes() -> None:
    served = _served()
    capped = np.zeros(served.ok.size, bool)
    capped[served.ok.size // 2 :] = True  # the cap full for half the run: a backlog, not a steady soak
    _, verdict = _verdict(
        _samples(rss_per_request=300.0), Served(served.sent, served.done, served.ok, capped)
    )
    assert _status(verdict, "load_held") == "inconclusive" and verdict.status == "inconclusive"
    assert _status(verdict, "rss_slope") == "inconclusive"


def test_a_short_window_is_inconclusive_not_passed() -> None:
    short = _served(duration_s=60.0)
    every = _samples()
    samples = [s for s in every if s.t_unix <= START + 60.0] + [every[-1]]  # and the idle one after the load
    fits, verdict = judge(samples, short, START + 10.0, float(short.done.max()), max_in_flight=64)
    assert fits.window_requests < min_window_requests()
    assert _status(verdict, "rss_slope") == "inconclusive" and verdict.status == "inconclusive"
    assert np.isfinite(fits.rss.per_10k_requests)


def _short_window(rss_per_request: float) -> tuple[Fits, Verdict]:
    """Two minutes at 30 req/s: ~1.5k requests in the later half, where +-0.5 MB reads as up to ~3 MB/10k."""
    short = _served(duration_s=120.0)
    every = _samples(rss_per_request=rss_per_request, noise_mb=0.0)
    samples = [s for s in every if s.t_unix <= START + 120.0] + [every[-1]]
    return judge(samples, short, START + 10.0, float(short.done.max()), max_in_flight=64)


def test_a_short_window_fails_a_slope_beyond_its_noise_but_not_one_within_it() -> None:
    noise_slope = RSS_NOISE_MB / _short_window(0.0)[0].rss_requests * PER_10K
    assert noise_slope > 2 * RSS_BOUND_MB_PER_10K
    fits, verdict = _short_window(rss_per_request=1.5 * RSS_BOUND_MB_PER_10K * 1e6 / PER_10K)
    assert RSS_BOUND_MB_PER_10K < fits.rss.per_10k_requests < noise_slope, fits.rss
    assert _status(verdict, "rss_slope") == "inconclusive"
    fits, verdict = _short_window(rss_per_request=3 * noise_slope * 1e6 / PER_10K)
    assert fits.rss.per_10k_requests > noise_slope, fits.rss
    assert _status(verdict, "rss_slope") == "fail" and verdict.status == "fail"


def test_in_flight_high_water_and_completions() -> None:
    served = Served.of([0.0, 0.1, 0.2, 5.0], [1.0, 1.1, 0.3, 5.1], [True] * 4)
    times = np.array([-1.0, 0.15, 0.25, 2.0, 5.05])
    assert served.in_flight_high_water(times).tolist() == [0, 2, 3, 3, 3]
    assert served.completed_by(times).tolist() == [0, 0, 0, 3, 3]


def test_durations_and_the_warmup_rule() -> None:
    assert parse_duration("30m") == 1800 and parse_duration("45") == 45 and parse_duration("1.5h") == 5400
    with pytest.raises(ValueError):
        parse_duration("soon")
    assert default_warmup_s(45) == 10 and default_warmup_s(300) == 30 and default_warmup_s(1800) == 180


def test_a_figure_not_computed_survives_the_json_round_trip(tmp_path) -> None:
    """write_json writes NaN as null (strict JSON); the records read it back as NaN."""
    import math

    from bench.results import write_json
    from bench.soak.records import SlopeFit

    fit = SlopeFit(quantity="rss", unit="MB", per_10k_requests=math.nan, first=1.0, last=2.0,
                   growth_over_window=math.nan, later_half_growth=math.nan, samples=3)  # fmt: skip
    path = write_json(tmp_path / "fit.json", fit.model_dump(mode="json")) or tmp_path / "fit.json"
    back = SlopeFit.model_validate_json(path.read_text())
    assert math.isnan(back.later_half_growth) and math.isnan(back.per_10k_requests) and back.samples == 3
