"""Overload: offered about 5x what one worker sustains, a service with MAX_IN_FLIGHT sheds the excess with
fast 503s carrying Retry-After, the latency of what it accepts stays bounded by the limit (not by the
backlog), nothing crashes, and it serves normally once the load stops.

The bound comes from the service's own measured cost, never an absolute figure: an accepted request waits for
at most MAX_IN_FLIGHT - 1 others on its worker, so its latency is about MAX_IN_FLIGHT x service time; the
slack absorbs the load generator and other tenants sharing the cores (measured: 2-3x the ideal). Latency is
judged where the service measures it (its access log, from the request's arrival to the end of the
response): the generator shares the two cores, and its own scheduling lag, printed beside, is not the
service's. Without the limit the backlog, and the latency, grow for as long as the overload lasts: the same
3 s at 5x with MAX_IN_FLIGHT=0 gave torch an accepted p50 of 11.7 s in the service (20 s p99 at the client),
about 180x its service time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.load import Payload, open_loop, percentile, service_time
from tests.fixtures.variants import local_variants

pytestmark = [pytest.mark.live, pytest.mark.slow]

IMAGES = Path(__file__).resolve().parents[2] / "images"
VARIANTS = list(local_variants())  # every variant of the registry the suite can start, one worker each
MAX_IN_FLIGHT = 4
OVERLOAD_FACTOR = 5.0
DURATION_SECONDS = 3.0
MAX_REQUESTS = 800
SLACK = 6.0


def _served(log_lines: str) -> list[tuple[int, float]]:
    """(status, seconds) of every /predict request in a stretch of the service's JSON access log."""
    served = []
    for line in log_lines.splitlines():
        if line.startswith("{") and '"duration_ms"' in line:
            entry = json.loads(line)
            if entry.get("path") == "/predict":
                served.append((entry["status"], entry["duration_ms"] / 1000.0))
    return served


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_overload_is_shed_fast_and_accepted_latency_stays_bounded(
    variant: str, start_registered_variant
) -> None:
    service = start_registered_variant(
        variant, name=f"{variant}-overload", workers=1, env={"MAX_IN_FLIGHT": str(MAX_IN_FLIGHT)}
    )
    payload = Payload.image_file(IMAGES / "photo_medium.jpg")
    unloaded = service_time(service.base_url, payload)
    rate = min(OVERLOAD_FACTOR / unloaded, MAX_REQUESTS / DURATION_SECONDS)
    pids = service.process_ids()
    log_offset = len(service.log_text())

    outcomes = open_loop(service.base_url, payload, rate, DURATION_SECONDS)

    rejected = [o for o in outcomes if o.status == 503]
    unexpected = [o for o in outcomes if o.status not in {200, 503}]
    client_accepted = [o.latency for o in outcomes if o.status == 200]
    deadline = time.monotonic() + 10
    while len(served := _served(service.log_text()[log_offset:])) < len(outcomes) - len(unexpected):
        assert time.monotonic() < deadline, f"{len(served)} requests in the log, {len(outcomes)} sent"
        time.sleep(0.1)
    accepted = [seconds for status, seconds in served if status == 200]
    shed = [seconds for status, seconds in served if status == 503]
    p99 = percentile(accepted, 99)
    bound = SLACK * MAX_IN_FLIGHT * unloaded
    print(
        f"\n{variant}: service time {unloaded * 1000:.1f} ms (sustainable ~{1 / unloaded:.0f} req/s); "
        f"offered {rate:.0f} req/s ({rate * unloaded:.1f}x) for {DURATION_SECONDS:.0f} s = {len(outcomes)} "
        f"requests; accepted {len(accepted)}: in the service p50 {percentile(accepted, 50) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms (bound {bound * 1000:.0f} ms), at the client p99 "
        f"{percentile(client_accepted, 99) * 1000:.0f} ms; rejected 503 {len(rejected)} "
        f"({len(rejected) / len(outcomes):.0%}): in the service p50 {percentile(shed, 50) * 1000:.2f} ms; "
        f"other {len(unexpected)}"
    )
    assert not unexpected, unexpected[:5]
    assert accepted and rejected, "at 5x overload some requests must be served and some shed"
    assert all(o.error_code == "overloaded" and o.retry_after for o in rejected), rejected[:3]
    assert p99 <= bound, f"accepted p99 {p99 * 1000:.0f} ms above {bound * 1000:.0f} ms"
    assert percentile(shed, 99) <= percentile(accepted, 50), "shedding must be faster than serving"

    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        assert client.get("/ready").status_code == 200
        for _ in range(5):
            response = client.post("/predict", content=payload.body, headers=payload.headers)
            assert response.status_code == 200, response.text
    assert service.process_ids() == pids, "a worker died or was replaced under overload"
