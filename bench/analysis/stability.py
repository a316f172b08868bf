"""Is an open-loop measurement stable? Judged by statistics whose noise is known, not by a fixed 10%.

perf_analyzer's rule (the last 3 windows' throughput and p99 within 10%) assumes windows of thousands of
requests. An open-loop window here holds ~30: the Poisson count in it has a relative standard error of
1/sqrt(30) = 18%, so two windows differ by more than 10% most of the time, and the p99 of 30 requests is
their maximum. Every run failed that rule, and the flag told nothing. This rule asks four questions, each
with a test whose noise under a steady service is known, and flags only what is both significant (beyond
the noise, at ``ALPHA`` per check) and large (beyond a practical floor):

1. throughput: do the last ``STABLE_WINDOWS`` windows complete requests at one rate? Completions in a
   window of a service that keeps up are a Poisson count n, so the relative difference of two windows has a
   standard error of sqrt(1/n1 + 1/n2); allowed: max(``THROUGHPUT_FLOOR``, Z * that). At 30 requests per
   window that is 85%: a window that short cannot tell more, and the rule says so instead of crying wolf.
2. latency: do the last windows share one latency distribution? The percentile compared is the highest the
   windows hold enough requests for (``TAIL_PERCENTILES``: a p99 needs 200, so that two requests lie above
   it). Each window's count above the pooled percentile makes a 2 x k table whose chi-square is the
   k-sample quantile test (Mood's median test at another quantile), distribution-free; requests queued
   behind one burst are not independent, so the chi-square is divided by the AR(1) variance factor
   (1 + phi) / (1 - phi) of the median window's lag-1 rank autocorrelation (about 3 at half load).
3. drift: do the window medians of latency and of the busy gap (the service time, see :func:`busy_gaps`),
   or the throughput, trend over the whole run? A weighted least-squares slope with each window's own
   standard error (order statistics for a median, Poisson for a count); when the windows scatter around the
   line more than those errors, the errors are scaled to the scatter and the slope must pass Student's t
   (n - 2 dof) instead of Z, so a slow first window does not read as a trend. Large: the line moves more
   than ``DRIFT_FLOOR`` across the run.
4. stalls: does a window after the first hold a busy gap (no completion while requests were outstanding)
   beyond the pooled gaps' exponential tail, far beyond their p95, that held back enough requests to move
   the window's compared percentile? A burst of Poisson arrivals lengthens the queue but not the gaps, so
   arrival noise cannot pass for a stall; a single scheduler hiccup that no latency percentile felt is not
   one either. Stalls in every window alike are a steady property of the service, reproduced by its
   percentiles: they do not make a run unstable.

Calibration (tests/unit/test_bench_stability.py, and a FIFO queue of Poisson arrivals simulated at 30
requests a window over 200 seeds): a steady service passes in 96-99% of runs at half and three-quarter
load, where the old rule passed almost none; a service slowing 2.5x over the run fails in 97%, one freezing
0.3 s every 2.3 s in 100%.

Windows are sized by request count, like MLPerf's minimum query count: :func:`window_plan` makes each
window expect at least ``MIN_WINDOW_REQUESTS`` requests at the offered rate, however short the run asked.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

STABLE_WINDOWS = 3  # the last windows whose throughput and latency must agree
MIN_WINDOW_REQUESTS = 30  # a window expects at least this many requests (see window_plan)
MAX_STRETCH = 4.0  # a low-rate run is lengthened at most this much to fill its windows

ALPHA = 0.001  # per check: a steady service fails one of the five checks in well under 1% of runs
Z = NormalDist().inv_cdf(1 - ALPHA / 2)  # 3.29
THROUGHPUT_FLOOR = 0.10  # perf_analyzer's tolerance: smaller differences never matter, however significant
LATENCY_FLOOR = 0.10  # the compared percentile's range across the last windows, relative to the pooled one
DRIFT_FLOOR = 0.20  # the fitted line's change across the run, relative to its mean
STALL_FLOOR = 0.50  # the worst window's percentile over the median window's, minus 1
# The percentile compared, by the fewest requests in a window: at least two requests above each.
TAIL_PERCENTILES: tuple[tuple[float, int], ...] = ((99.0, 200), (90.0, 20), (50.0, 2))
MEDIAN_SE_FLOOR = 0.005  # relative: a window median is never known better than timer and scheduler jitter
MAX_SERIAL_CORRELATION = 0.9  # caps the variance inflation at (1 + 0.9) / (1 - 0.9) = 19


def window_plan(rate: float, duration_s: float, windows: int = 5) -> tuple[float, float]:
    """(duration, window length) so each window expects at least MIN_WINDOW_REQUESTS at this rate."""
    window_s = max(duration_s / windows, MIN_WINDOW_REQUESTS / rate)
    duration = min(max(duration_s, STABLE_WINDOWS * window_s), MAX_STRETCH * duration_s)
    return duration, window_s


@dataclass(frozen=True)
class Window:
    start_s: float
    length_s: float
    completed: int  # successful requests that completed inside the window
    latencies_ms: tuple[float, ...]  # of the successful requests scheduled inside the window
    requests: int  # scheduled inside the window, failures included
    gaps_ms: tuple[float, ...] = ()  # busy gaps that start inside the window (see busy_gaps)
    held_by_longest: int = 0  # requests outstanding during the window's longest busy gap

    @property
    def throughput(self) -> float:
        return self.completed / self.length_s if self.length_s > 0 else math.nan

    @functools.cached_property
    def _latencies(self) -> np.ndarray:
        return np.asarray(self.latencies_ms, dtype=float)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self._latencies, q)) if self.latencies_ms else math.nan

    def summary(self) -> dict[str, float | int]:
        return {
            "start_s": self.start_s,
            "length_s": self.length_s,
            "requests": self.requests,
            "completed": self.completed,
            "throughput": self.throughput,
            "max_gap_ms": max(self.gaps_ms, default=math.nan),
            **{f"p{q:g}_ms": self.percentile(q) for q, _ in sorted(TAIL_PERCENTILES)},
        }


def busy_gaps(scheduled_s: np.ndarray, completed_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start of each busy gap, its length in ms), one per completion: from the later of the previous
    completion and the request's own scheduled send to its completion. For a FIFO server that is the
    request's service time; a burst of arrivals lengthens the queue but not the gaps, a stall lengthens one
    gap by its whole length."""
    order = np.argsort(completed_s, kind="stable")
    done, sent = completed_s[order], scheduled_s[order]
    starts = np.maximum(np.concatenate([[-np.inf], done[:-1]]), sent)
    return starts, (done - starts) * 1000.0


def windows_of(
    scheduled_s: Sequence[float],
    latencies_ms: Sequence[float],
    ok: Sequence[bool],
    start_s: float,
    end_s: float,
    window_s: float,
) -> list[Window]:
    """Cut one open-loop run into consecutive ``window_s`` windows (a trailing partial one is dropped):
    throughput and busy gaps by completion time, latencies by scheduled time (in scheduled order)."""
    order = np.argsort(np.asarray(scheduled_s, dtype=float), kind="stable")  # the tests read serial order
    scheduled = np.asarray(scheduled_s, dtype=float)[order]
    latency = np.asarray(latencies_ms, dtype=float)[order]
    success = np.asarray(ok, dtype=bool)[order]
    completed = scheduled + latency / 1000.0
    gap_starts, gaps = busy_gaps(scheduled[success], completed[success])
    windows = []
    count = int((end_s - start_s) / window_s + 1e-9)  # 12.7 / (12.7 / 3) must give 3, not 2.999...
    for index in range(count):
        low, high = start_s + index * window_s, start_s + (index + 1) * window_s
        sent_inside = (scheduled >= low) & (scheduled < high)
        done_inside = success & (completed >= low) & (completed < high)
        gaps_inside = (gap_starts >= low) & (gap_starts < high)
        held = 0
        if np.any(gaps_inside):
            longest = int(np.flatnonzero(gaps_inside)[np.argmax(gaps[gaps_inside])])
            gap_end = gap_starts[longest] + gaps[longest] / 1000.0
            held = int(np.count_nonzero((scheduled < gap_end) & (completed > gap_starts[longest])))
        windows.append(
            Window(
                start_s=low,
                length_s=window_s,
                completed=int(np.count_nonzero(done_inside)),
                latencies_ms=tuple(float(v) for v in latency[sent_inside & success]),
                requests=int(np.count_nonzero(sent_inside)),
                gaps_ms=tuple(float(v) for v in gaps[gaps_inside]),
                held_by_longest=held,
            )
        )
    return windows


@dataclass(frozen=True)
class Check:
    """One question of the rule: which statistic over which windows (1-based), against what tolerance."""

    name: str  # windows, throughput, latency, drift, stalls
    passed: bool
    statistic: str
    windows: tuple[int, ...]
    tolerance: str
    detail: str

    @property
    def text(self) -> str:
        return f"{self.name}: {self.detail} (tolerance: {self.tolerance})"


@dataclass(frozen=True)
class Stability:
    stable: bool
    windows: list[Window]
    reason: str
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stable": self.stable,
            "reason": self.reason,
            "checks": [asdict(check) for check in self.checks],
            "windows": [window.summary() for window in self.windows],
        }


def _span(numbers: Sequence[int]) -> str:
    return f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])


def tail_percentile(fewest_requests: int) -> float:
    """The highest percentile of TAIL_PERCENTILES that windows of this many requests can compare."""
    return next((q for q, needs in TAIL_PERCENTILES if fewest_requests >= needs), TAIL_PERCENTILES[-1][0])


def chi2_sf(x: float, dof: int) -> float:
    """P(chi-square with ``dof`` degrees of freedom > x), closed forms for integer dof."""
    if x <= 0:
        return 1.0
    half = x / 2.0
    if dof % 2 == 0:
        return math.exp(-half) * sum(half**i / math.factorial(i) for i in range(dof // 2))
    tail = math.erfc(math.sqrt(half))
    return tail + math.exp(-half) * sum(
        half ** (i - 0.5) / math.gamma(i + 0.5) for i in range(1, (dof + 1) // 2)
    )


def quantile_test(
    samples: Sequence[Sequence[float]], q: float, inflation: float = 1.0
) -> tuple[list[int], float, float]:
    """The k-sample quantile test: (each sample's count above the pooled q-th percentile, the Pearson
    chi-square of that 2 x k table divided by ``inflation``, its p-value). Ties at the threshold count as
    below, so identical samples give p = 1."""
    pooled = np.concatenate([np.asarray(s, dtype=float) for s in samples])
    threshold = float(np.percentile(pooled, q))
    above = [int(np.count_nonzero(np.asarray(s, dtype=float) > threshold)) for s in samples]
    total, size = sum(above), pooled.size
    if total in (0, size):
        return above, 0.0, 1.0
    chi2 = 0.0
    for count, n in zip(above, (len(s) for s in samples), strict=True):
        expected = n * total / size
        chi2 += (count - expected) ** 2 / expected + (count - expected) ** 2 / (n - expected)
    chi2 /= inflation
    return above, chi2, chi2_sf(chi2, len(samples) - 1)


def lag1_rank_correlation(latencies_ms: Sequence[float]) -> float | None:
    """Lag-1 autocorrelation of the ranks of one window's latencies in scheduled order (None: too few, or
    all equal)."""
    if len(latencies_ms) < 8:
        return None
    ranks = np.argsort(np.argsort(np.asarray(latencies_ms, dtype=float), kind="stable")).astype(float)
    before, after = ranks[:-1], ranks[1:]
    if before.std() == 0 or after.std() == 0:
        return None
    return float(np.corrcoef(before, after)[0, 1])


def variance_inflation(windows: Sequence[Window]) -> float:
    """How much serial correlation widens the noise of a count or a median: (1 + phi) / (1 - phi), the
    effective-sample-size factor of an AR(1) series, with phi the median window's lag-1 rank
    autocorrelation (a stalled window cannot widen its own tolerance). At half load, the bench's open rate,
    phi is about 0.5."""
    found = [r for w in windows if (r := lag1_rank_correlation(w.latencies_ms)) is not None]
    phi = min(max(float(np.median(found)), 0.0), MAX_SERIAL_CORRELATION) if found else 0.0
    return (1 + phi) / (1 - phi)


def _windows_check(windows: Sequence[Window], count: int) -> Check | None:
    if len(windows) >= count:
        return None
    return Check("windows", False, "count", tuple(range(1, len(windows) + 1)), f">= {count} windows",
                 f"only {len(windows)} window(s), {count} needed")  # fmt: skip


def throughput_check(windows: Sequence[Window], numbers: Sequence[int]) -> Check:
    """Every pair of windows: relative difference of completions within max(floor, Z sqrt(1/n1 + 1/n2))."""
    worst: tuple[float, float, int, int] = (-math.inf, 0.0, 0, 0)
    for i in range(len(windows)):
        for j in range(i + 1, len(windows)):
            n1, n2 = windows[i].completed, windows[j].completed
            if n1 + n2 == 0:
                continue
            allowed = max(THROUGHPUT_FLOOR, Z * math.sqrt(1 / max(n1, 1) + 1 / max(n2, 1)))
            difference = abs(n1 - n2) / ((n1 + n2) / 2)
            if difference - allowed > worst[0] - worst[1]:
                worst = (difference, allowed, i, j)
    tolerance = f"max({THROUGHPUT_FLOOR:.0%}, {Z:.2f} x sqrt(1/n1 + 1/n2)), Poisson completions"
    span = tuple(numbers)
    if all(w.completed == 0 for w in windows):
        return Check("throughput", False, "completions", span, tolerance, "nothing completed")
    difference, allowed, i, j = worst
    counts = ", ".join(str(w.completed) for w in windows)
    passed = difference <= allowed
    verb = "within" if passed else "differ by more than"
    detail = (
        f"completions of windows {_span(list(numbers))} ({counts}): windows {numbers[i]} and {numbers[j]}"
        f" {verb} the allowed {allowed:.0%} ({difference:.0%})"
    )
    return Check("throughput", passed, "completions", span, tolerance, detail)


def _latency_samples(windows: Sequence[Window], numbers: Sequence[int]) -> tuple[list[Window], list[int]]:
    kept = [(w, n) for w, n in zip(windows, numbers, strict=True) if len(w.latencies_ms) >= 2]
    return [w for w, _ in kept], [n for _, n in kept]


def _quantile_check(
    name: str,
    windows: Sequence[Window],
    numbers: Sequence[int],
    large: Callable[[list[float], float], tuple[bool, str]],
) -> Check:
    """The quantile test over ``windows``; fails when significant at ALPHA and ``large``."""
    kept, kept_numbers = _latency_samples(windows, numbers)
    if len(kept) < 2:
        return Check(name, True, "latency", tuple(numbers), "-", "too few windows with latencies to compare")
    fewest = min(len(w.latencies_ms) for w in kept)
    q = tail_percentile(fewest)
    inflation = variance_inflation(kept)
    above, chi2, p = quantile_test([w.latencies_ms for w in kept], q, inflation)
    own = [w.percentile(q) for w in kept]
    pooled = float(np.percentile(np.concatenate([w.latencies_ms for w in kept]), q))
    is_large, size_text = large(own, pooled)
    chosen = f"p{q:g}" if q == TAIL_PERCENTILES[0][0] else f"p{q:g} (fewest {fewest} requests a window)"
    detail = (
        f"{chosen} of windows {_span(kept_numbers)}: {', '.join(map(str, above))} requests above the pooled"
        f" p{q:g} {pooled:.1f} ms (chi-square {chi2:.1f} after serial-correlation factor {inflation:.1f},"
        f" {len(kept) - 1} dof, p = {p:.2g}); {size_text}"
    )
    tolerance = f"p < {ALPHA:g} and {size_text.split(':')[0]}"
    return Check(name, not (p < ALPHA and is_large), f"p{q:g}", tuple(kept_numbers), tolerance, detail)


def _range_large(own: list[float], pooled: float) -> tuple[bool, str]:
    width = (max(own) - min(own)) / pooled if pooled > 0 else 0.0
    text = f"range > {LATENCY_FLOOR:.0%} of pooled: {min(own):.1f}-{max(own):.1f} ms ({width:.0%})"
    return width > LATENCY_FLOOR, text


@functools.cache
def t_critical(dof: int, alpha: float = ALPHA) -> float:
    """Two-sided critical value of Student's t (numerical integration of its density, then bisection)."""
    grid = np.linspace(0.0, 1000.0, 400_001)
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    density = np.exp(log_norm - (dof + 1) / 2 * np.log1p(grid**2 / dof))
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    return float(np.interp(0.5 - alpha / 2, cumulative, grid))


def trend(x: Sequence[float], y: Sequence[float], se: Sequence[float]) -> tuple[float, float, float]:
    """Weighted least-squares slope of y on x, its t-score and the critical value it must pass: Z with the
    points' own standard errors; when they scatter around the line more than those (reduced chi-square > 1,
    serial correlation or a model that does not fit), the errors scaled to the scatter and Student's t with
    n - 2 degrees of freedom."""
    xs, ys, ses = (np.asarray(v, dtype=float) for v in (x, y, se))
    weights = 1.0 / ses**2
    x_mean = float(np.sum(weights * xs) / np.sum(weights))
    y_mean = float(np.sum(weights * ys) / np.sum(weights))
    sxx = float(np.sum(weights * (xs - x_mean) ** 2))
    if sxx == 0 or len(xs) < 3:
        return 0.0, 0.0, math.inf
    slope = float(np.sum(weights * (xs - x_mean) * (ys - y_mean))) / sxx
    residual = ys - (y_mean + slope * (xs - x_mean))
    reduced = float(np.sum(weights * residual**2)) / (len(xs) - 2)
    if reduced <= 1.0:
        return slope, slope * math.sqrt(sxx), Z
    return slope, slope * math.sqrt(sxx / reduced), t_critical(len(xs) - 2)


def median_se(latencies_ms: Sequence[float], inflation: float = 1.0) -> float:
    """Standard error of a sample median from its order statistics (ranks n/2 +- sqrt(n)/2, one binomial
    standard deviation) times sqrt(``inflation``), never below MEDIAN_SE_FLOOR of the median."""
    ordered = np.sort(np.asarray(latencies_ms, dtype=float))
    n = ordered.size
    low = int(max(0, math.floor(n / 2 - math.sqrt(n) / 2)))
    high = int(min(n - 1, math.ceil(n / 2 + math.sqrt(n) / 2)))
    spread = (ordered[high] - ordered[low]) / 2.0 * math.sqrt(inflation)
    return max(spread, MEDIAN_SE_FLOOR * float(np.median(ordered)), 1e-6)


def _drift(name: str, x: list[float], y: list[float], se: list[float]) -> tuple[bool, str]:
    slope, score, critical = trend(x, y, se)
    mean = float(np.mean(y))
    change = slope * (x[-1] - x[0]) / mean if mean > 0 else 0.0
    failed = abs(score) > critical and abs(change) > DRIFT_FLOOR
    return failed, f"{name} {change:+.0%} across the run (t = {score:.1f} vs {critical:.1f})"


def drift_check(windows: Sequence[Window], numbers: Sequence[int]) -> Check:
    kept, _ = _latency_samples(windows, numbers)
    tolerance = f"|t| > the critical value and change > {DRIFT_FLOOR:.0%}: weighted slope"
    parts, failed = [], False
    if len(kept) >= 3:
        middles = [w.start_s + w.length_s / 2 for w in kept]
        medians = [w.percentile(50.0) for w in kept]
        errors = [median_se(w.latencies_ms) for w in kept]  # the widening in trend covers serial correlation
        bad, text = _drift("median latency", middles, medians, errors)
        parts.append(text)
        failed |= bad
    with_gaps = [w for w in windows if len(w.gaps_ms) >= 2]
    if len(with_gaps) >= 3:
        middles = [w.start_s + w.length_s / 2 for w in with_gaps]
        medians = [float(np.median(w.gaps_ms)) for w in with_gaps]
        bad, text = _drift("median busy gap", middles, medians, [median_se(w.gaps_ms) for w in with_gaps])
        parts.append(text)
        failed |= bad
    middles = [w.start_s + w.length_s / 2 for w in windows]
    rates = [w.throughput for w in windows]
    errors = [math.sqrt(max(w.completed, 1)) / w.length_s for w in windows]
    bad, text = _drift("throughput", middles, rates, errors)
    parts.append(text)
    failed |= bad
    detail = f"over windows {_span(list(numbers))}: " + ", ".join(parts)
    return Check("drift", not failed, "slope", tuple(numbers), tolerance, detail)


def gap_tail_p(gap_ms: float, p75: float, p95: float, count: int) -> float:
    """P(a window of ``count`` gaps holds one of at least ``gap_ms``) under the pooled gaps' exponential tail
    above their p75, its scale from quantiles, (p95 - p75) / ln 5, so a few stall gaps cannot widen it."""
    scale = max((p95 - p75) / math.log(5.0), MEDIAN_SE_FLOOR * p75, 1e-6)
    single = 0.25 * math.exp(-max(gap_ms - p75, 0.0) / scale)
    return 1.0 - (1.0 - min(single, 1.0)) ** count


def stall_check(windows: Sequence[Window], numbers: Sequence[int]) -> Check:
    """A window after the first whose longest busy gap is beyond the pooled gaps' noise (gap_tail_p below
    ALPHA / windows), far beyond them (1 + STALL_FLOOR times their p95, robust while stalls are under 5% of
    the gaps) and felt: it held back at least the compared percentile's share of the window's requests."""
    kept = [(w, n) for w, n in zip(windows, numbers, strict=True) if w.gaps_ms and len(w.latencies_ms) >= 2]
    span = tuple(n for _, n in kept)
    tolerance = (
        f"p < {ALPHA:g} / windows under the gaps' exponential tail, > {1 + STALL_FLOOR:g} x their p95,"
        " holding back the compared percentile's share of the window"
    )
    if len(kept) < STABLE_WINDOWS:
        return Check("stalls", True, "busy gap", span, tolerance, "too few windows to compare")
    q = tail_percentile(min(len(w.latencies_ms) for w, _ in kept))
    pooled = np.concatenate([w.gaps_ms for w, _ in kept])
    p75, p95 = (float(v) for v in np.percentile(pooled, [75, 95]))
    judged = []
    for window, number in kept:
        longest = max(window.gaps_ms)
        p = gap_tail_p(longest, p75, p95, len(window.gaps_ms))
        needed = max(2, math.ceil((1 - q / 100) * len(window.latencies_ms)))
        stalled = (
            p < ALPHA / len(kept) and longest > (1 + STALL_FLOOR) * p95 and window.held_by_longest >= needed
        )
        judged.append((not stalled, p, number, longest, window.held_by_longest, needed))
    passed, p, number, longest, held, needed = min(judged)  # a stalled window first, then the least likely
    detail = (
        f"longest busy gap of windows {_span(list(span))}: window {number} {longest:.1f} ms (p = {p:.2g};"
        f" pooled p95 gap {p95:.1f} ms), holding back {held} requests (p{q:g} moves at {needed})"
    )
    return Check("stalls", passed, "busy gap", span, tolerance, detail)


def assess(windows: Sequence[Window], count: int = STABLE_WINDOWS) -> Stability:
    """The four checks of the module docstring; stable when none fails."""
    numbers = list(range(1, len(windows) + 1))
    too_few = _windows_check(windows, count)
    if too_few is not None:
        return Stability(False, list(windows), too_few.detail, [too_few])
    last, last_numbers = windows[-count:], numbers[-count:]
    checks = [
        throughput_check(last, last_numbers),
        _quantile_check("latency", last, last_numbers, _range_large),
        drift_check(windows, numbers),
    ]
    if len(windows) - 1 >= count:
        checks.append(stall_check(windows[1:], numbers[1:]))
    failed = [check for check in checks if not check.passed]
    if failed:
        return Stability(False, list(windows), "unstable: " + "; ".join(c.text for c in failed), checks)
    compared = next(c.statistic for c in checks if c.name == "latency")
    stalls = "no stall" if len(checks) == 4 else "too few windows to look for stalls"
    reason = (
        f"stable: windows {_span(last_numbers)} agree in throughput (Poisson tolerance) and {compared};"
        f" no drift over {len(windows)} windows; {stalls}"
    )
    return Stability(True, list(windows), reason, checks)
