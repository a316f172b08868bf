"""Blocking HTTP helpers the collectors share: wait for readiness, time one request, read a JSON endpoint."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

READY_POLL_INTERVAL_S = 0.02


class NotReadyError(RuntimeError):
    """The service did not answer 200 on its ready path in time, or its process ended first."""


def wait_ready(
    url: str,
    *,
    timeout_s: float,
    started_at: float,
    process_exit: Callable[[], str | None] = lambda: None,
) -> float:
    """Poll ``url`` until it answers 200; seconds from ``started_at`` (a perf_counter value) to that answer.

    ``process_exit`` returns a description when the service's process has ended, so a crash fails fast
    instead of waiting for the timeout.
    """
    deadline = started_at + timeout_s
    last_problem = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while True:
            try:
                response = client.get(url)
                if response.status_code == 200:
                    return time.perf_counter() - started_at
                last_problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                last_problem = type(error).__name__
            exited = process_exit()
            if exited is not None:
                raise NotReadyError(f"{url}: the service exited before it was ready ({exited})")
            if time.perf_counter() > deadline:
                raise NotReadyError(f"{url}: not ready after {timeout_s:.0f} s (last: {last_problem})")
            time.sleep(READY_POLL_INTERVAL_S)


@dataclass(frozen=True)
class TimedResponse:
    status_code: int
    elapsed_ms: float
    body: Any  # parsed JSON, or None when the body is not JSON


def timed_post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> TimedResponse:
    start = time.perf_counter()
    response = client.post(url, content=body, headers=headers)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    return TimedResponse(response.status_code, elapsed_ms, parsed)


@dataclass(frozen=True)
class Drain:
    """How long the service took to get back to its idle latency after a load, one request at a time."""

    seconds: float
    requests: int
    drained: bool
    last_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"drain_s": round(self.seconds, 3), "drain_requests": self.requests, "drained": self.drained,
                "drain_last_ms": round(self.last_ms, 2)}  # fmt: skip


def drain_backlog(
    url: str, body: bytes, headers: dict[str, str], idle_ms: float, *, timeout_s: float, max_requests: int
) -> Drain:
    """Send one request at a time until one is answered 200 within ``idle_ms``: a service that still works
    through the requests an overloaded run left in its queues answers later than that (or refuses with
    503), so the next measurement starts on an empty service, not on the last one's backlog."""
    started = time.perf_counter()
    last_ms, sent = math.inf, 0
    with httpx.Client(timeout=timeout_s) as client:
        while sent < max_requests and time.perf_counter() - started < timeout_s:
            sent += 1
            try:
                answer = timed_post(client, url, body, headers)
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            last_ms = answer.elapsed_ms
            if answer.status_code == 200 and last_ms <= idle_ms:
                return Drain(time.perf_counter() - started, sent, True, last_ms)
            if answer.status_code != 200:
                time.sleep(0.05)  # a refusal comes back at once: do not spin on it
    return Drain(time.perf_counter() - started, sent, False, last_ms)


def get_json(url: str, timeout_s: float = 5.0) -> Any:
    response = httpx.get(url, timeout=timeout_s)
    response.raise_for_status()
    return response.json()
