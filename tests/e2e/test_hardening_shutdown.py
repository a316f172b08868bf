"""SIGTERM while requests are in flight: every request already accepted completes with 200, new connections
are refused (never accepted and left hanging), and the process exits within the configured grace period
(GRACEFUL_TIMEOUT) even though one client holds a request open by never finishing its upload.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fixtures.load import Payload, new_connection_outcome, stuck_upload
from tests.fixtures.variants import local_variants

pytestmark = [pytest.mark.live, pytest.mark.slow]

IMAGES = Path(__file__).resolve().parents[2] / "images"
# Every variant of the registry the suite can start, with its [variant.tests] workers (onnx: 2).
VARIANTS = list(local_variants())
GRACE_SECONDS = 8
IN_FLIGHT = 3
# uvicorn's supervisor polls for signals every 0.5 s, each worker checks for shutdown every 0.1 s.
MAX_SECONDS_UNTIL_REFUSED = 1.5
EXIT_MARGIN_SECONDS = 5.0  # process teardown after the grace period: lifespan shutdown, interpreter exit


def _in_flight(base_url: str) -> float:
    exposition = httpx.get(f"{base_url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("serving_in_flight_requests")
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_sigterm_completes_accepted_requests_refuses_new_ones_and_exits_in_time(
    variant: str, start_registered_variant
) -> None:
    service = start_registered_variant(
        variant, name=f"{variant}-sigterm", env={"GRACEFUL_TIMEOUT": str(GRACE_SECONDS)}
    )
    payload = Payload.image_file(IMAGES / "photo_large.jpg")
    baseline = _in_flight(service.base_url)

    finished: list[float] = []

    def post_large() -> int:
        with httpx.Client(base_url=service.base_url, timeout=60) as client:
            response = client.post("/predict", content=payload.body, headers=payload.headers)
        finished.append(time.monotonic())
        return response.status_code

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        stuck = stuck_upload(service.base_url)
        accepted = [pool.submit(post_large) for _ in range(IN_FLIGHT)]
        deadline = time.monotonic() + 30
        while _in_flight(service.base_url) - baseline < IN_FLIGHT + 1:
            assert time.monotonic() < deadline, "the requests never got in flight"
            time.sleep(0.02)

        signalled = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        new_connections: list[tuple[float, str]] = []
        while time.monotonic() - signalled < 3.0:
            new_connections.append((time.monotonic() - signalled, new_connection_outcome(service.base_url)))
            time.sleep(0.1)
        statuses = [future.result() for future in accepted]

    try:
        exit_code = service.process.wait(timeout=GRACE_SECONDS + EXIT_MARGIN_SECONDS)
    finally:
        stuck.close()
    exited = time.monotonic() - signalled
    outcomes = [outcome for _, outcome in new_connections]
    first_refusal = outcomes.index("refused") if "refused" in outcomes else None
    refused_after = new_connections[first_refusal][0] if first_refusal is not None else float("nan")
    print(
        f"\n{variant} ({service.workers} worker(s)): {IN_FLIGHT} in-flight requests -> {statuses}, finished "
        f"{[round(t - signalled, 2) for t in sorted(finished)]} s after SIGTERM; "
        f"new connections every 0.1 s: {outcomes} (refused from "
        f"{refused_after:.2f} s); "
        f"exit code {exit_code} after {exited:.2f} s (GRACEFUL_TIMEOUT={GRACE_SECONDS})"
    )
    assert statuses == [200] * IN_FLIGHT
    assert max(finished) > signalled, "nothing was still in flight at SIGTERM: the check proved nothing"
    assert first_refusal is not None and refused_after <= MAX_SECONDS_UNTIL_REFUSED, new_connections
    assert all(outcome == "refused" for outcome in outcomes[first_refusal:]), new_connections
    assert set(outcomes) <= {"200", "reset", "refused"}, new_connections
    assert exit_code in {0, -signal.SIGTERM}
    assert exited <= GRACE_SECONDS + EXIT_MARGIN_SECONDS
