"""Queueing models of one service: predicted latency vs offered load from the measured service time.

M/M/c has closed forms (Erlang C; the sojourn tail is a mix of exponentials). M/D/c (deterministic service,
the closer fit for a fixed-size image through a fixed model) has no simple closed form for its tail, so it
is simulated: a seeded Poisson stream through ``c`` first-come-first-served servers.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Literal

import numpy as np

Model = Literal["M/M/c", "M/D/c"]
MODELS: tuple[Model, ...] = ("M/M/c", "M/D/c")
SIMULATED_CUSTOMERS = 200_000


def utilization(rate: float, service_s: float, servers: int = 1) -> float:
    return rate * service_s / servers


def erlang_c(servers: int, offered: float) -> float:
    """Probability an arrival waits in M/M/c with offered load a = lambda / mu (Erlang C)."""
    _require_stable(offered / servers)
    term, total = 1.0, 1.0  # a^k / k! summed for k < c
    for k in range(1, servers):
        term *= offered / k
        total += term
    last = term * offered / servers * servers / (servers - offered)  # a^c / c! * c / (c - a)
    return last / (total + last)


def mmc_sojourn_survival(t: float, rate: float, service_rate: float, servers: int) -> float:
    """P(time in system > t), M/M/c: Exp(mu) service plus, with probability C, an Exp(c mu - lambda) wait."""
    waits = erlang_c(servers, rate / service_rate)
    theta = servers * service_rate - rate
    no_wait = math.exp(-service_rate * t)
    if math.isclose(theta, service_rate):
        both = math.exp(-service_rate * t) * (1.0 + service_rate * t)  # Erlang-2
    else:
        both = (service_rate * math.exp(-theta * t) - theta * math.exp(-service_rate * t)) / (
            service_rate - theta
        )
    return (1.0 - waits) * no_wait + waits * both


def _solve_increasing(function: Callable[[float], float], target: float, high: float) -> float:
    """x with function(x) == target for a function increasing from below the target at 0."""
    while function(high) < target:
        high *= 2.0
    low = 0.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if function(middle) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def mmc_sojourn_quantile(rate: float, service_rate: float, servers: int, q: float) -> float:
    return _solve_increasing(
        lambda t: 1.0 - mmc_sojourn_survival(t, rate, service_rate, servers), q, 10.0 / service_rate
    )


def simulate_sojourns(
    rate: float,
    service: Callable[[np.random.Generator, int], np.ndarray],
    servers: int = 1,
    customers: int = SIMULATED_CUSTOMERS,
    seed: int = 0,
) -> np.ndarray:
    """Times in system of a FCFS queue, Poisson arrivals, ``servers`` servers (first tenth dropped)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, size=customers))
    services = service(rng, customers)
    if servers == 1:
        # Lindley's recursion in closed form: wait_n = U_n - min(0, U_1..U_n), U = cumsum(S_{n-1} - gap_n)
        gaps = np.diff(arrivals, prepend=0.0)
        steps = np.concatenate([[0.0], services[:-1]]) - gaps
        steps[0] = 0.0
        climb = np.cumsum(steps)
        waits = climb - np.minimum.accumulate(np.minimum(climb, 0.0))
        return (waits + services)[customers // 10 :]
    free_at = [0.0] * servers  # a heap of the times each server becomes free
    sojourns = np.empty(customers)
    for index in range(customers):
        arrival = float(arrivals[index])
        start = max(arrival, heapq.heappop(free_at))
        finish = start + float(services[index])
        heapq.heappush(free_at, finish)
        sojourns[index] = finish - arrival
    return sojourns[customers // 10 :]


def deterministic(service_s: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda _rng, size: np.full(size, service_s)


def predicted_quantile_ms(
    model: Model, rate: float, service_ms: float, servers: int = 1, q: float = 0.99, seed: int = 0
) -> float:
    """Predicted q-quantile of latency (ms) at ``rate`` requests/s; infinite at or above saturation."""
    service_s = service_ms / 1000.0
    if utilization(rate, service_s, servers) >= 1.0:
        return math.inf
    if model == "M/M/c":
        return 1000.0 * mmc_sojourn_quantile(rate, 1.0 / service_s, servers, q)
    if model == "M/D/c":
        sojourns = simulate_sojourns(rate, deterministic(service_s), servers, seed=seed)
        return 1000.0 * float(np.quantile(sojourns, q))
    raise ValueError(f"unknown queueing model {model!r}; choose from {MODELS}")


def max_rate_under_slo(
    model: Model, service_ms: float, slo_ms: float, servers: int = 1, q: float = 0.99, steps: int = 30
) -> float:
    """The highest offered rate whose predicted q-quantile stays within the SLO (0 when service > SLO)."""
    if service_ms >= slo_ms:
        return 0.0
    low, high = 0.0, servers * 1000.0 / service_ms
    for _ in range(steps):
        middle = (low + high) / 2.0
        if predicted_quantile_ms(model, middle, service_ms, servers, q) <= slo_ms:
            low = middle
        else:
            high = middle
    return low


def _require_stable(rho: float) -> None:
    if rho >= 1.0:
        raise ValueError(f"utilization {rho:.3f} >= 1: the queue has no steady state")
