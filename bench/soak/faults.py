"""Faults under load. ``kill-worker``: SIGKILL one worker of a multi-worker service (``onnx-2workers``) while
a closed loop of ``concurrency`` clients keeps it busy, and account for every request.

What must hold: only the killed worker's in-flight requests fail (so at most ``min(concurrency, the worker's
MAX_IN_FLIGHT)``, and none sent after the worker is gone: the listening socket is the supervisor's, shared,
so a new connection queues there and the surviving worker takes it); uvicorn's supervisor (serving_core's
``Multiprocess``, which checks its workers every 0.5 s) starts a replacement, a new pid that reports itself
ready (``serving_worker_ready{pid}`` in /metrics) within ``recovery_bound_s``; ``/ready`` answers 200; and
every request after the recovery succeeds. Each client opens a fresh connection per request, so a failure is
a request the killed worker had accepted, never a stale keep-alive connection to it.

The recovery bound is the supervisor's poll interval plus ``RESTART_FACTOR`` times the service's own cold
start at launch (measured, not assumed): the replacement does what a cold start does (a spawned interpreter's
imports, model load, warm-up) on the core the surviving worker keeps busy with the whole load, so at least
twice as slow; on this shared 2-core machine it took 11.2 s against a 3.9 s cold start (2.8x). Four times
leaves room for a busier neighbour; ``MIN_RECOVERY_BOUND_S`` keeps a fast start from making it a race.

A replacement worker must not refuse anything either: serving_core loads the model of a worker that replaces
one of a running service before it accepts connections (``ModelHolder.replaces_a_worker``), so the shared
socket gives it no connection it could only answer 503 ``not_ready``. The accounting counts such refusals
apart from the losses, and any one of them fails the check.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bench.payloads import Payload, load_payload, predicted_class
from bench.probe import get_json
from bench.registry import PayloadFormat, Variant
from bench.runners.base import Runner, Service
from bench.soak.records import Check, KillWorkerFault, RequestOutcome, Status
from bench.soak.verdict import overall

SUPERVISOR_POLL_S = 0.5
RESTART_FACTOR = 4.0
MIN_RECOVERY_BOUND_S = 10.0
REQUEST_TIMEOUT_S = 30.0
POLL_S = 0.1
DEAD_WAIT_S = 5.0
READY_STREAK = 10
READY_STREAK_MARGIN_S = 5.0  # ten fresh /ready polls after the new worker is ready


@dataclass(frozen=True)
class KillWorkerOptions:
    concurrency: int = 4
    payload: str = "photo_medium"
    before_s: float = 3.0  # load before the kill
    after_s: float = 4.0  # load after the recovery
    min_after_requests: int = 20
    max_requests: int = 20_000
    max_load_s: float = 120.0


def worker_pids(root_pid: int) -> set[int]:
    """The supervisor's worker processes: its children, less multiprocessing's resource tracker."""
    workers = set()
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(root_pid).children():
            with contextlib.suppress(psutil.Error):
                if not any("resource_tracker" in part for part in child.cmdline()):
                    workers.add(child.pid)
    return workers


def ready_worker_pids(base_url: str) -> set[int]:
    """Workers whose ``serving_worker_ready`` gauge is 1 (a SIGKILLed one keeps its last value)."""
    try:
        exposition = httpx.get(f"{base_url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return set()
    ready = set()
    for line in exposition.splitlines():
        if line.startswith('serving_worker_ready{pid="') and line.endswith(" 1.0"):
            ready.add(int(line.split('"')[1]))
    return ready


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _fresh_status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return None


def _error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("code") if isinstance(error, dict) else None


class ClosedLoad:
    """``concurrency`` threads posting the payload back to back, a fresh connection per request, until
    stopped, ``max_requests`` or ``max_s``; every outcome timed from ``t0``."""

    def __init__(self, url: str, payload: Payload, payload_format: PayloadFormat, options: KillWorkerOptions):
        self.url, self.payload, self.payload_format, self.options = url, payload, payload_format, options
        self.outcomes: list[RequestOutcome] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(options.concurrency)]
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self) -> None:
        self.t0 = time.monotonic()
        for thread in self._threads:
            thread.start()

    def stop(self) -> list[RequestOutcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 5)
        with self._lock:
            return sorted(self.outcomes, key=lambda outcome: outcome.sent)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def completed(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def _more(self) -> bool:
        with self._lock:
            started = len(self.outcomes) + self._in_flight
        within = started < self.options.max_requests and self.now() < self.options.max_load_s
        return within and not self._stop.is_set()

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)  # a fresh connection per request
        with httpx.Client(timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
            while self._more():
                with self._lock:
                    self._in_flight += 1
                sent = self.now()
                status, ok, failure, code = None, False, None, None
                try:
                    response = client.post(self.url, content=self.payload.body, headers=self.payload.headers)
                    status = response.status_code
                    answer = predicted_class(self.payload_format, status, response.headers, response.content)
                    ok = answer is not None
                    code = None if ok else _error_code(response)
                    failure = None if ok else f"HTTP {status} {code or ''}".strip()
                except httpx.HTTPError as error:
                    failure = f"{type(error).__name__}: {error}"[:200]
                outcome = RequestOutcome(
                    sent=sent, done=self.now(), status=status, ok=ok, failure=failure, error_code=code
                )
                with self._lock:
                    self._in_flight -= 1
                    self.outcomes.append(outcome)


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(POLL_S)
    return False


def _start_measured(runner: Runner, variant: Variant, log_path: Path) -> tuple[Service, float]:
    """The service and its cold start (launch -> first 200 on the ready path), as ``Runner.start_ready``."""
    service = runner.start(variant, log_path=log_path)
    try:
        return service, runner.wait_ready(service)
    except BaseException:
        runner.stop(service)
        raise


@dataclass
class KillTimeline:
    """What the fault observed, in seconds from the load's start."""

    before: set[int]
    victim: int
    killed_at: float = 0.0
    dead_at: float = 0.0
    new_pid: int | None = None
    new_ready_at: float | None = None
    ready_recovered_at: float | None = None
    new_served: bool = False
    after: set[int] = field(default_factory=set)
    ready_statuses: Counter[str] = field(default_factory=Counter)


def kill_worker(
    variant: Variant, runner: Runner, log_path: Path, options: KillWorkerOptions | None = None
) -> KillWorkerFault:
    """Start ``variant``, SIGKILL one of its workers under load, stop it; every request accounted for."""
    options = options or KillWorkerOptions()
    service, startup_s = _start_measured(runner, variant, log_path)
    try:
        if service.pid is None:
            raise RuntimeError(f"{variant.name}: the kill-worker fault needs a local process tree")
        return _kill_worker_on(service, service.pid, startup_s, options)
    finally:
        runner.stop(service)


def _two_ready_workers(service: Service, root: int, timeout_s: float) -> set[int]:
    def ready() -> bool:
        workers = worker_pids(root)
        return len(workers) >= 2 and workers <= ready_worker_pids(service.base_url)

    if not _wait(ready, timeout_s):
        raise RuntimeError(f"{service.variant.name}: needs 2 ready workers, has {sorted(worker_pids(root))}")
    return worker_pids(root)


def _worker_max_in_flight(service: Service) -> int | None:
    info = get_json(service.url(service.variant.info_path or "/info"))
    value = info.get("max_in_flight") if isinstance(info, dict) else None
    return int(value) if value else None  # 0 or absent: unbounded


def _kill_worker_on(
    service: Service, root: int, startup_s: float, options: KillWorkerOptions
) -> KillWorkerFault:
    variant = service.variant
    bound_s = max(MIN_RECOVERY_BOUND_S, SUPERVISOR_POLL_S + RESTART_FACTOR * startup_s)
    before = _two_ready_workers(service, root, bound_s)
    worker_max = _worker_max_in_flight(service)
    payload = load_payload(options.payload, variant.payload_format, oip_input=variant.oip_input)
    load = ClosedLoad(service.url(variant.predict_path), payload, variant.payload_format, options)
    timeline = KillTimeline(before=before, victim=min(before))
    load.start()
    try:
        # Every client busy, so the victim most likely holds some (the kernel spreads fresh connections).
        _wait(
            lambda: load.now() >= options.before_s and load.in_flight >= options.concurrency,
            options.max_load_s,
        )
        timeline.killed_at = load.now()
        os.kill(timeline.victim, signal.SIGKILL)
        _wait(lambda: _gone(timeline.victim), DEAD_WAIT_S)
        timeline.dead_at = load.now()
        watch_s = bound_s + 5.0  # past the bound, so that a late recovery is reported, not just missed
        _watch_recovery(service, root, load, timeline, watch_s)
        if timeline.new_ready_at is not None:
            if _wait(lambda: _ready_streak(service), bound_s):
                timeline.ready_recovered_at = load.now()
            recovered_at = load.now()
            _wait(lambda: load.now() - recovered_at >= options.after_s, options.after_s + 1)
            timeline.new_served = _wait(lambda: _info_pid(service) == timeline.new_pid, 10.0)
    finally:
        outcomes = load.stop()
    timeline.after = worker_pids(root)
    return account(variant.name, options, worker_max, timeline, bound_s, startup_s, outcomes)


def _watch_recovery(
    service: Service, root: int, load: ClosedLoad, timeline: KillTimeline, watch_s: float
) -> None:
    """Poll /ready (fresh connections) and the tree until the supervisor's new worker reports itself ready."""
    deadline = time.monotonic() + watch_s
    while time.monotonic() < deadline:
        timeline.ready_statuses[str(_fresh_status(service.url(service.variant.ready_path)))] += 1
        if timeline.new_pid is None:
            fresh = worker_pids(root) - timeline.before
            timeline.new_pid = min(fresh) if fresh else None
        if timeline.new_pid is not None and timeline.new_pid in ready_worker_pids(service.base_url):
            timeline.new_ready_at = load.now()
            return
        time.sleep(POLL_S)


def _ready_streak(service: Service, polls: int = READY_STREAK) -> bool:
    """``polls`` fresh connections in a row answered 200 on the ready path (each may reach either worker)."""
    url = service.url(service.variant.ready_path)
    return all(_fresh_status(url) == 200 for _ in range(polls))


def _info_pid(service: Service) -> int | None:
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
        return int(httpx.get(service.url(service.variant.info_path or "/info"), timeout=5).json()["pid"])
    return None


def _check(name: str, good: bool, value: float, bound: float, reason: str) -> Check:
    status: Status = "pass" if good else "fail"
    return Check(name=name, status=status, value=value, bound=bound, reason=reason)


def account(
    variant: str,
    options: KillWorkerOptions,
    worker_max: int | None,
    timeline: KillTimeline,
    bound_s: float,
    startup_s: float,
    outcomes: list[RequestOutcome],
) -> KillWorkerFault:
    """Every request sorted into in flight at the kill, sent after it and after the recovery; then judged.

    A ``not_ready`` 503 is a refusal, not a loss (answered at once, before any work): there must be none,
    since the replacement loads before it accepts. Anything else that failed is lost, and must have been in
    flight at the kill.
    """
    t = timeline
    loss_bound = min(options.concurrency, worker_max or options.concurrency)
    failed = [o for o in outcomes if not o.ok]
    lost = [o for o in failed if not o.refused_not_ready]
    refused = [o for o in failed if o.refused_not_ready]
    in_flight = [o for o in outcomes if o.sent <= t.dead_at and o.done >= t.killed_at]
    lost_in_flight = [o for o in lost if o.sent <= t.dead_at and o.done >= t.killed_at]
    lost_after_kill = [o for o in lost if o.sent > t.dead_at]
    recovered = t.new_ready_at if t.new_ready_at is not None else float("inf")
    refused_outside = [o for o in refused if o.sent < t.killed_at or o.sent >= recovered]
    after_recovery = [o for o in outcomes if o.sent >= recovered]
    failed_after_recovery = [o for o in after_recovery if not o.ok]
    recovery_s = None if t.new_ready_at is None else t.new_ready_at - t.killed_at
    ready_s = None if t.ready_recovered_at is None else t.ready_recovered_at - t.killed_at
    polls = sum(t.ready_statuses.values())
    ready_bound = bound_s + READY_STREAK_MARGIN_S
    unexpected_ready = polls - t.ready_statuses.get("200", 0) - t.ready_statuses.get("503", 0)

    def seconds(value: float | None) -> str:
        return f"{value:.2f} s" if value is not None else "never"

    def value_of(value: float | None) -> float:
        return value if value is not None else float("nan")

    checks = [
        _check("losses_bounded", len(lost) <= min(loss_bound, len(in_flight)), len(lost), loss_bound,
               f"{len(lost)} lost, {len(in_flight)} in flight at the kill; at most {loss_bound} (min of "
               f"{options.concurrency} clients and the worker's MAX_IN_FLIGHT {worker_max})"),
        _check("only_in_flight_lost", len(lost_in_flight) == len(lost), len(lost) - len(lost_in_flight), 0,
               f"{len(lost_after_kill)} lost though sent after the killed worker was gone, "
               f"{len(lost) - len(lost_in_flight) - len(lost_after_kill)} answered before the kill"),
        _check("no_refusals", not refused, len(refused), 0,
               f"{len(refused)} not_ready refusals (503, before any work), {len(refused_outside)} of them "
               "outside kill -> recovery: a replacement must load before it accepts"),
        _check("worker_restarted", recovery_s is not None and recovery_s <= bound_s, value_of(recovery_s),
               bound_s, f"new worker {t.new_pid} ready {seconds(recovery_s)} after the kill "
               f"(bound: {SUPERVISOR_POLL_S} s + {RESTART_FACTOR} x the {startup_s:.2f} s cold start)"),
        _check("ready_recovered", ready_s is not None and ready_s <= ready_bound, value_of(ready_s),
               ready_bound, f"{READY_STREAK} fresh /ready polls in a row 200 {seconds(ready_s)} "
               f"after the kill; during the outage {dict(t.ready_statuses)}"),
        _check("ready_statuses", unexpected_ready == 0 and polls > 0, unexpected_ready, 0,
               "/ready answered only 200 (the surviving worker) or 503 (the replacement, loading)"),
        _check("new_worker_serves", t.new_served, float(t.new_served), 1.0,
               f"a fresh connection's /info answered from the new worker {t.new_pid}"),
        _check("all_ok_after_recovery",
               not failed_after_recovery and len(after_recovery) >= options.min_after_requests,
               len(failed_after_recovery), 0,
               f"{len(failed_after_recovery)} of {len(after_recovery)} requests after the recovery failed"),
    ]  # fmt: skip
    return KillWorkerFault(
        variant=variant,
        concurrency=options.concurrency,
        worker_max_in_flight=worker_max,
        loss_bound=loss_bound,
        workers_before=sorted(t.before),
        workers_after=sorted(t.after),
        killed_pid=t.victim,
        new_pid=t.new_pid,
        killed_at=t.killed_at,
        dead_at=t.dead_at,
        new_worker_ready_at=t.new_ready_at,
        recovery_s=recovery_s,
        ready_recovered_at=t.ready_recovered_at,
        ready_recovery_s=ready_s,
        recovery_bound_s=bound_s,
        startup_s=startup_s,
        in_flight_at_kill=len(in_flight),
        new_worker_served=t.new_served,
        ready_statuses=dict(t.ready_statuses),
        requests=len(outcomes),
        failures=len(failed),
        lost=len(lost),
        lost_in_flight_at_kill=len(lost_in_flight),
        lost_sent_after_kill=len(lost_after_kill),
        refused_not_ready=len(refused),
        refused_outside_replacement=len(refused_outside),
        failures_after_recovery=len(failed_after_recovery),
        requests_after_recovery=len(after_recovery),
        errors=dict(Counter(o.failure or "" for o in failed)),
        verdict=overall(checks),
        outcomes=outcomes,
    )
