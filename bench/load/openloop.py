"""Open-loop load on the predict endpoint: requests leave on a seeded Poisson schedule, whatever happens.

One Locust user owns the schedule. At each arrival time it hands the request to a greenlet of a pool of
``max_in_flight`` (the cap on outstanding requests), so a slow service does not slow the offered load down.
Each request's latency is measured from its SCHEDULED send time (coordinated-omission corrected) and is what
Locust's statistics record; the send lag (actual - scheduled) and the service time (from the actual send)
travel in the request's context. Requests scheduled during warmup are named ``predict (warmup)``.

Configured by the same environment as ``locustfile.py`` plus BENCH_RATE (requests/s, required), BENCH_SEED,
BENCH_WARMUP_S, BENCH_DURATION_S, BENCH_MAX_REQUESTS and BENCH_MAX_IN_FLIGHT, so it also runs from the
Locust command line (one user; it stops itself when the schedule is done):

    BENCH_RATE=20 BENCH_DURATION_S=30 locust -f bench/load/openloop.py --headless -u 1 -r 1 \
        -H http://127.0.0.1:8002 --csv results/manual-open
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import gevent
from gevent.event import Event
from gevent.pool import Pool
from locust import FastHttpUser, constant, task
from locust.exception import StopUser

from bench.load.arrivals import bounded_schedule
from bench.load.locustfile import PAYLOAD, PREDICT_PATH, REQUEST_TIMEOUT_S, fail_unless_prediction
from bench.load.spec import MAX_IN_FLIGHT

MEASURED_NAME = "predict"
WARMUP_NAME = "predict (warmup)"


def _optional_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


class OpenLoopUser(FastHttpUser):
    fixed_count = 1  # one scheduler, whatever -u says: the rate is the load, not the user count
    wait_time = constant(0)
    connection_timeout = REQUEST_TIMEOUT_S
    network_timeout = REQUEST_TIMEOUT_S
    concurrency = int(os.environ.get("BENCH_MAX_IN_FLIGHT", MAX_IN_FLIGHT))

    schedule: ClassVar[list[float]] = (
        bounded_schedule(
            float(os.environ["BENCH_RATE"]),
            float(os.environ.get("BENCH_WARMUP_S", "0")),
            float(os.environ.get("BENCH_DURATION_S", "30")),
            int(os.environ.get("BENCH_SEED", "0")),
            _optional_int("BENCH_MAX_REQUESTS"),
        ).tolist()
        if os.environ.get("BENCH_RATE")
        else []
    )
    measure_from_s: ClassVar[float] = float(os.environ.get("BENCH_WARMUP_S", "0"))
    finished: ClassVar[Event] = Event()
    started_at: ClassVar[float | None] = None  # perf_counter of schedule offset 0

    @task
    def run_schedule(self) -> None:
        cls = type(self)
        pool = Pool(cls.concurrency)
        start = time.perf_counter()
        cls.started_at = start
        for offset in cls.schedule:
            delay = start + offset - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            capped = pool.full()  # spawn blocks until a slot frees: this request will leave late
            pool.spawn(self._send, start + offset, offset, capped)
        pool.join(timeout=REQUEST_TIMEOUT_S + 5)
        cls.finished.set()
        raise StopUser()

    def _send(self, due: float, offset: float, capped: bool) -> None:
        sent = time.perf_counter()
        name = MEASURED_NAME if offset >= self.measure_from_s else WARMUP_NAME
        with self.client.post(
            PREDICT_PATH, data=PAYLOAD.body, headers=PAYLOAD.headers, name=name, catch_response=True
        ) as response:
            fail_unless_prediction(response)
            done = time.perf_counter()
            meta: dict[str, Any] = response.request_meta
            meta["response_time"] = (done - due) * 1000.0  # from the schedule, not from the send
            meta["context"] = {
                **meta.get("context", {}),
                "scheduled_s": offset,
                "send_lag_ms": (sent - due) * 1000.0,
                "service_ms": (done - sent) * 1000.0,
                "capped": capped,
                "measured": name == MEASURED_NAME,
            }
