"""The SLO search against a service of known capacity: one request at a time, 10 ms each (100 req/s).

With Poisson arrivals that is an M/D/1 queue, whose p99 reaches 100 ms near 77 req/s; the search must land
between that prediction (made with a 30% longer service time, for HTTP and scheduling overhead, minus the
bisection's resolution) and the capacity itself.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from bench.analyses import search_slo
from bench.analysis.queueing import max_rate_under_slo
from bench.analysis.slo_search import SLO_PROBE_REQUESTS
from bench.payloads import load_payload
from bench.probe import drain_backlog
from bench.profiles import get_profile
from bench.registry import PayloadFormat, Variant
from bench.runners.base import Service
from tests.fixtures.serial_server import serial_server

pytestmark = [pytest.mark.live, pytest.mark.slow]

SERVICE_MS, SLO_MS = 10.0, 100.0


def test_search_finds_the_rate_a_known_service_sustains_under_the_slo(tmp_path: Path) -> None:
    capacity = 1000.0 / SERVICE_MS
    profile = get_profile("quick").with_overrides(
        slo_ms=SLO_MS, slo_probes=6, slo_probe_s=5.0, slo_attempts=2, slo_low=0.2, slo_high=1.2
    )
    payload = load_payload("photo_small", PayloadFormat.RAW)
    with serial_server(SERVICE_MS / 1000.0) as url:
        variant = Variant(name="serial", url=url, payload_format=PayloadFormat.RAW)
        service = Service(variant=variant, base_url=url, spawned_at=0.0)
        result = search_slo(service, payload, profile, capacity, tmp_path, cores=None)

    resolution = (profile.slo_high - profile.slo_low) * capacity / 2 ** (profile.slo_probes - 2)
    expected_low = max_rate_under_slo("M/D/c", SERVICE_MS * 1.3, SLO_MS) - resolution
    assert expected_low <= result.max_rps <= capacity, result.to_dict()
    assert sum(probe.attempts for probe in result.probes) >= profile.slo_probes
    assert (tmp_path / "search.json").is_file() and (tmp_path / "probe-00" / "requests.json").is_file()
    # Above capacity the queue grows without bound: the probe at the high bound must have failed.
    assert not result.probes[1].passes()
    # Every probe started on a drained service, and each held enough requests for its p99.
    assert all(probe.detail["drained"] for probe in result.probes), [p.detail for p in result.probes]
    for index in range(len(result.probes)):
        held = json.loads((tmp_path / f"probe-{index:02d}" / "window.json").read_text())["requests"]
        assert held >= SLO_PROBE_REQUESTS * 0.8  # Poisson: the schedule holds about that many


def test_drain_waits_out_the_backlog_an_overload_left(tmp_path: Path) -> None:
    """Requests queued behind one server are still served after their clients went away; the drain returns
    only once a request is answered within the idle bound, i.e. after the queue emptied."""
    payload = load_payload("photo_small", PayloadFormat.RAW)
    queued, service_s = 30, 0.02
    with serial_server(service_s) as url:

        def abandoned_request() -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"{url}/predict", content=payload.body, headers=payload.headers, timeout=0.2)

        burst = [threading.Thread(target=abandoned_request) for _ in range(queued)]
        for thread in burst:
            thread.start()
        time.sleep(0.1)  # every request is in the server's queue
        drain = drain_backlog(f"{url}/predict", payload.body, payload.headers, 2000 * service_s,
                              timeout_s=30.0, max_requests=100)  # fmt: skip
        for thread in burst:
            thread.join()
    assert drain.drained and drain.last_ms <= 2000 * service_s
    assert drain.seconds >= 0.5 * queued * service_s, drain  # it waited behind most of the queue
