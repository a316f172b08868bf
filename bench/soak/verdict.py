"""Slopes against the requests served, and the bounds a soak is judged by.

Everything is fitted against the number of requests completed by each sample's time, not against the clock:
a leak is per request, and a soak at another rate (or a stall of a shared machine) moves the clock, not the
requests. Pure functions over arrays, so constructed samples test them (tests/unit/test_soak_verdict.py).

**RSS.** RSS is not a line: it moves in steps. Every request in flight holds its body, its decoded image and
its tensors, and glibc (MALLOC_TRIM_THRESHOLD_ = 128 MB, as the variants run) keeps the heap it grew for the
busiest moment, until enough of it is free at the top to be trimmed at once: onnx at 50 % of capacity went
234 -> 343 MB in two steps when bursts set new in-flight records, stayed there, and fell back to 235 MB in one
trim (a 5-minute soak, 8k requests). One least-squares line through that says +56 MB per 10k requests, or,
with the high-water mark as a second regressor, -109: the steps and the trims, not the requests. So the
judged window is cut into ``RSS_BLOCKS`` blocks of consecutive samples, a least-squares slope against the
requests is fitted in each, and the RSS slope is their median: a leak raises every block, a step or a trim
moves one or two of them. And it is judged over the later half of the window only: the steps come while
the load's bursts still set new in-flight records (a 4-minute soak of onnx at 70% stepped 228 -> 298 MB in
its first two minutes and then held 298 MB flat for two), a leak keeps raising the later half as much as the
first. The one-line least-squares slope of the whole window is kept beside it (``rss_raw_per_10k_requests``).
The median is only as sure as its blocks agree: a later half that still trims and regrows (a 10-minute torch
soak went 469 -> 446/481/442/468/442/454 MB before it settled) gives blocks of +-tens of MB per 10k, and
their median can land over the bound by chance. So the median's standard error is read from the blocks'
spread: a slope fails only when its one-sided 95 % lower bound is over the bound, and passes only when
its one-sided 95 % upper bound is under it; in between it is inconclusive (a longer soak tells).

The bound, ``RSS_BOUND_MB_PER_10K`` = 1 MB per 10k requests, is 100 bytes per request. What that adds up to:
at onnx's capacity on this 2-core machine (~40 req/s on one shared core) 100 B/request is 40 x 86,400 x 100 B
= 350 MB a day, the service's whole ~415 MB RSS again every day (a restart a day, or an OOM kill under a
container limit); at the anchor's capacities (hundreds of req/s) it is GBs a day. Smaller leaks exist (10
B/request is 35 MB a day here) but are not what a soak of minutes can tell from the allocator: after warm-up
RSS moves by about +-0.5 MB (``RSS_NOISE_MB``: chunks freed and reused, arenas, page granularity; rust held
to 0.1 MB over 4k requests, onnx's plateaus drifted +0.5 MB over 5k), which over a window of N requests
reads as a slope of up to 0.5 MB / N. Below ``min_window_requests()`` (5k requests, where that noise equals
the bound) the RSS check is inconclusive rather than passed, and fails only for a slope beyond that noise; a
30-minute soak at ~30 req/s judges ~45k requests, where the noise is a tenth of the bound.

**File descriptors and threads.** A leak grows without bound and keeps growing; a pool that fills up
(anyio's worker threads, which also expire after 10 s idle; keep-alive connections) stops. So a count fails
when the fit says it grew by more than ``COUNT_GROWTH_BOUND`` over the window *and* is still growing in the
later half. Sockets are one per client connection: the load's, capped by the generator's ``max_in_flight``;
they must stay under that cap above the idle baseline, and fall back to the baseline once the load ends.
Other descriptors (files, pipes, eventfds) have no such excuse.

**The load itself.** The verdict is about a service at a steady share of its capacity. When the generator's
cap was full for more than ``CAPPED_FRACTION_BOUND`` of the requests, the service fell behind the offered
rate (on a shared machine the capacity measured beforehand may no longer hold): the service then sits at its
in-flight cap with a backlog, and its memory reflects the backlog rather than the requests, so its RSS check
is inconclusive, whatever the slope; fds, threads, sockets and errors are judged all the same.

**Errors.** At 70 % of capacity nothing should fail; ``ERROR_FRACTION_BOUND`` (1 in 1,000) leaves room for a
timeout on a shared machine, not for a failure mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.soak.records import Check, SlopeFit, Status, TreeSample, Verdict

MB = 1e6
PER_10K = 10_000.0
RSS_BOUND_MB_PER_10K = 1.0
RSS_NOISE_MB = 0.5
COUNT_GROWTH_BOUND = 3.0  # fds or threads the fit may add over the whole window
ERROR_FRACTION_BOUND = 0.001
CAPPED_FRACTION_BOUND = 0.01
SOCKET_RELEASE_SLACK = 2  # sockets above the idle baseline still allowed once the load has ended
MIN_FIT_SAMPLES = 4
RSS_BLOCKS = 8
RSS_SLOPE_Z = 1.645  # one-sided 95%: fails when the lower bound is over, passes when the upper is under


def min_window_requests(bound: float = RSS_BOUND_MB_PER_10K, noise_mb: float = RSS_NOISE_MB) -> int:
    """The fewest judged requests for which the allocator's noise reads as less than the bound."""
    return int(np.ceil(noise_mb / bound * PER_10K))


@dataclass(frozen=True)
class Served:
    """What the generator recorded per request, in unix seconds."""

    sent: np.ndarray
    done: np.ndarray
    ok: np.ndarray
    capped: np.ndarray | None = None  # waited for a free slot: the generator's cap was full

    @classmethod
    def of(
        cls, sent: Sequence[float], done: Sequence[float], ok: Sequence[bool], capped: Sequence[bool] = ()
    ) -> Served:
        held = np.asarray(capped, bool) if len(capped) else None
        return cls(np.asarray(sent, float), np.asarray(done, float), np.asarray(ok, bool), held)

    def completed_by(self, times: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.sort(self.done), times, side="right").astype(float)

    def in_flight_high_water(self, times: np.ndarray) -> np.ndarray:
        """The most requests outstanding at once up to each of ``times``."""
        events = np.concatenate([self.sent, self.done])
        steps = np.concatenate([np.ones(self.sent.size), -np.ones(self.done.size)])
        order = np.lexsort((steps, events))  # at equal times the completion first: no false overlap
        events, level = events[order], np.cumsum(steps[order])
        if level.size == 0:
            return np.zeros(times.shape)
        high_water = np.maximum.accumulate(level)
        index = np.searchsorted(events, times, side="right") - 1
        return np.where(index >= 0, high_water[np.clip(index, 0, None)], 0.0)


def _lstsq_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Slope of y on x by least squares (with an intercept)."""
    coefficients, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(x), x]), y, rcond=None)
    return float(coefficients[1])


def _block_median_slope(x: np.ndarray, y: np.ndarray, blocks: int) -> tuple[float, float]:
    """The median of the least-squares slopes of ``blocks`` runs of consecutive points, and its standard
    error from their spread (1.2533 x 1.4826 x MAD / sqrt(n): the normal-theory figure, read through the
    MAD so that the one or two blocks holding a step or a trim do not set it). NaN under 3 blocks."""
    count = min(blocks, x.size // MIN_FIT_SAMPLES)
    runs = zip(np.array_split(x, count), np.array_split(y, count), strict=True) if count >= 3 else []
    slopes = np.array([_lstsq_slope(bx, by) for bx, by in runs if np.ptp(bx) > 0])
    if slopes.size < 3:
        return float("nan"), float("nan")
    median = float(np.median(slopes))
    mad = float(np.median(np.abs(slopes - median)))
    return median, 1.2533 * 1.4826 * mad / np.sqrt(slopes.size)


def fit_slope(
    quantity: str,
    unit: str,
    requests: np.ndarray,
    values: np.ndarray,
    blocks: int | None = None,
) -> SlopeFit:
    """``values`` against ``requests`` over the judged samples; growth over the window and its later half.

    One least-squares line, or with ``blocks`` the median of the lines of that many blocks (see above) and
    its standard error."""

    def slope_of(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        return (_lstsq_slope(x, y), float("nan")) if blocks is None else _block_median_slope(x, y, blocks)

    if requests.size < MIN_FIT_SAMPLES or np.ptp(requests) == 0:
        nan = float("nan")
        first, last = (float(values[0]), float(values[-1])) if values.size else (nan, nan)
        return SlopeFit(quantity=quantity, unit=unit, per_10k_requests=nan, first=first, last=last,
                        growth_over_window=nan, later_half_growth=nan, samples=int(values.size))  # fmt: skip
    slope, standard_error = slope_of(requests, values)
    middle = requests[0] + np.ptp(requests) / 2
    later = requests >= middle
    if np.count_nonzero(later) >= MIN_FIT_SAMPLES and np.ptp(requests[later]) > 0:
        later_growth = slope_of(requests[later], values[later])[0] * np.ptp(requests[later])
    else:
        later_growth = slope * np.ptp(requests[later]) if later.any() else float("nan")
    return SlopeFit(
        quantity=quantity,
        unit=unit,
        per_10k_requests=slope * PER_10K,
        standard_error_per_10k=standard_error * PER_10K,
        first=float(values[0]),
        last=float(values[-1]),
        growth_over_window=slope * float(np.ptp(requests)),
        later_half_growth=float(later_growth),
        samples=int(values.size),
    )


@dataclass(frozen=True)
class Fits:
    rss: SlopeFit
    rss_raw_per_10k: float
    other_fds: SlopeFit
    socket_fds: SlopeFit
    threads: SlopeFit
    window_requests: int
    rss_requests: int  # the later half's, which the RSS slope is judged over


def fit_window(samples: Sequence[TreeSample], served: Served, judged_from: float, judged_to: float) -> Fits:
    """The fits over the samples taken between ``judged_from`` and ``judged_to`` (unix seconds)."""
    window = [s for s in samples if judged_from <= s.t_unix <= judged_to]
    times = np.array([s.t_unix for s in window], float)
    requests = served.completed_by(times)
    rss_mb = np.array([s.rss_bytes for s in window], float) / MB

    def counts(name: str, values: list[int]) -> SlopeFit:
        return fit_slope(name, "count", requests, np.array(values, float))

    raw = fit_slope("rss", "MB", requests, rss_mb)
    later = requests >= requests[0] + np.ptp(requests) / 2 if requests.size else np.zeros(0, bool)
    return Fits(
        rss=fit_slope("rss", "MB", requests[later], rss_mb[later], RSS_BLOCKS),
        rss_raw_per_10k=raw.per_10k_requests,
        other_fds=counts("other_fds", [s.other_fds for s in window]),
        socket_fds=counts("socket_fds", [s.socket_fds for s in window]),
        threads=counts("threads", [s.threads for s in window]),
        window_requests=int(np.ptp(requests)) if requests.size else 0,
        rss_requests=int(np.ptp(requests[later])) if later.any() else 0,
    )


def _finite(value: float) -> bool:
    return bool(np.isfinite(value))


def rss_check(fits: Fits, bound: float = RSS_BOUND_MB_PER_10K) -> Check:
    slope = fits.rss.per_10k_requests
    needed = min_window_requests(bound)
    if not _finite(slope):
        return Check(name="rss_slope", status="inconclusive", value=slope, bound=bound,
                     reason=f"too few samples in the judged window ({fits.rss.samples})")  # fmt: skip
    # Over N requests the allocator's +-RSS_NOISE_MB alone reads as a slope of up to noise / N: a short
    # window's slope over the bound but within that is noise, not a leak (a 5-minute torch soak read 1.8).
    noise_slope = RSS_NOISE_MB / fits.rss_requests * PER_10K if fits.rss_requests else np.inf
    spread = fits.rss.standard_error_per_10k
    lowest = slope - RSS_SLOPE_Z * spread if _finite(spread) else slope
    told = f"{slope:.3f} +- {spread:.3f} MB per 10k requests over the later {fits.rss_requests} requests"
    if lowest > max(bound, noise_slope):
        return Check(name="rss_slope", status="fail", value=slope, bound=bound,
                     reason=f"RSS grows {told} (> {bound})")  # fmt: skip
    if slope > bound:
        return Check(name="rss_slope", status="inconclusive", value=slope, bound=bound,
                     reason=f"{told}: over {bound}, but not by more than its blocks' spread or the "
                     f"allocator's +-{RSS_NOISE_MB} MB over that many requests can read")  # fmt: skip
    if fits.rss_requests < needed:
        return Check(name="rss_slope", status="inconclusive", value=slope, bound=bound,
                     reason=f"{fits.rss_requests} requests in the later half, fewer than the {needed} at "
                     f"which +-{RSS_NOISE_MB} MB of allocator noise stays under the bound")  # fmt: skip
    highest = slope + RSS_SLOPE_Z * spread if _finite(spread) else slope
    if highest > bound:
        return Check(name="rss_slope", status="inconclusive", value=slope, bound=bound,
                     reason=f"{told}: under {bound}, but its blocks' spread reaches over it")  # fmt: skip
    return Check(name="rss_slope", status="pass", value=slope, bound=bound, reason=told)


def growth_check(fit: SlopeFit, bound: float = COUNT_GROWTH_BOUND) -> Check:
    """Fails a count that grew by more than ``bound`` over the window and still grows in its later half."""
    name = f"{fit.quantity}_growth"
    growth, later = fit.growth_over_window, fit.later_half_growth
    if not _finite(growth):
        return Check(name=name, status="inconclusive", value=growth, bound=bound,
                     reason=f"too few samples in the judged window ({fit.samples})")  # fmt: skip
    growing = growth > bound and _finite(later) and later > bound / 2
    status: Status = "fail" if growing else "pass"
    reason = (
        f"{fit.quantity} grew by {growth:.1f} over the window, {later:.1f} of it in the later half "
        f"({fit.first:.0f} -> {fit.last:.0f}; {fit.per_10k_requests:+.2f} per 10k requests)"
    )
    return Check(name=name, status=status, value=growth, bound=bound, reason=reason)


def socket_checks(
    samples: Sequence[TreeSample], during: Sequence[TreeSample], max_in_flight: int
) -> list[Check]:
    """Sockets under load stay within the generator's connection cap above the idle baseline (the first
    sample, before the load), and return to that baseline after it (the last sample)."""
    baseline = samples[0].socket_fds
    peak = max((s.socket_fds for s in during), default=baseline)
    cap = baseline + max_in_flight
    after = samples[-1].socket_fds
    released = baseline + SOCKET_RELEASE_SLACK
    return [
        Check(name="sockets_bounded", status="pass" if peak <= cap else "fail", value=peak, bound=cap,
              reason=f"peak {peak} sockets under load; idle baseline {baseline} + {max_in_flight} "
              "connections the generator may open"),
        Check(name="sockets_released", status="pass" if after <= released else "fail", value=after,
              bound=released, reason=f"{after} sockets after the load (idle baseline {baseline})"),
    ]  # fmt: skip


def error_check(requests: int, failures: int, bound: float = ERROR_FRACTION_BOUND) -> Check:
    if requests == 0:
        return Check(name="errors", status="fail", value=float("nan"), bound=bound, reason="no requests")
    fraction = failures / requests
    return Check(name="errors", status="fail" if fraction > bound else "pass", value=fraction, bound=bound,
                 reason=f"{failures} of {requests} requests failed")  # fmt: skip


def load_check(served: Served, bound: float = CAPPED_FRACTION_BOUND) -> Check:
    capped = int(np.count_nonzero(served.capped)) if served.capped is not None else 0
    fraction = capped / max(served.ok.size, 1)
    status: Status = "pass" if fraction <= bound else "inconclusive"
    reason = f"{capped} of {served.ok.size} requests waited for a free slot under the generator's cap" + (
        "" if status == "pass" else ": the service fell behind the offered rate, not a steady soak"
    )
    return Check(name="load_held", status=status, value=fraction, bound=bound, reason=reason)


def tree_check(samples: Sequence[TreeSample]) -> Check:
    """The same processes throughout: a worker that died and was replaced would hide its own growth."""
    first = set(samples[0].pids)
    seen = set().union(*(s.pids for s in samples))
    changed = len(seen ^ first)
    reason = f"{len(first)} processes at the start; {changed} pids came or went"
    status: Status = "pass" if changed == 0 else "fail"
    return Check(name="process_tree_stable", status=status, value=changed, bound=0, reason=reason)


def overall(checks: list[Check]) -> Verdict:
    statuses = {check.status for check in checks}
    status: Status = "pass"
    if "fail" in statuses:
        status = "fail"
    elif "inconclusive" in statuses:
        status = "inconclusive"
    return Verdict(status=status, checks=checks)


def judge(
    samples: Sequence[TreeSample],
    served: Served,
    judged_from: float,
    judged_to: float,
    max_in_flight: int,
) -> tuple[Fits, Verdict]:
    """Every check of a soak over its samples (the first before the load, the last after it)."""
    fits = fit_window(samples, served, judged_from, judged_to)
    during = [s for s in samples if judged_from <= s.t_unix <= judged_to]
    failures = int(np.count_nonzero(~served.ok))
    held = load_check(served)
    rss = rss_check(fits)
    if held.status != "pass" and rss.status == "fail":  # memory under a backlog says nothing about a leak
        rss = rss.model_copy(update={"status": "inconclusive", "reason": f"{rss.reason}, under a backlog"})
    checks = [
        rss,
        growth_check(fits.other_fds),
        growth_check(fits.threads),
        *socket_checks(samples, during, max_in_flight),
        error_check(int(served.ok.size), failures),
        tree_check(samples),
        held,
    ]
    return fits, overall(checks)
