"""SIGTERM while requests are in flight: every request already accepted completes with 200, new connections
are refused (never accepted and left hanging), and the process exits within the configured grace period
(GRACEFUL_TIMEOUT) even though one client holds a request open by never finishing its upload.
"""

from __future__ import annotations

import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.load import Payload

pytestmark = [pytest.mark.live, pytest.mark.slow]

IMAGES = Path(__file__).resolve().parents[2] / "images"
VARIANTS = {"torch": ("torch_serving", 1), "onnx": ("onnx_serving", 2)}
GRACE_SECONDS = 6
IN_FLIGHT = 4
EXIT_MARGIN_SECONDS = 5.0  # process teardown after the grace period: lifespan shutdown, interpreter exit


def _in_flight(base_url: str) -> float:
    exposition = httpx.get(f"{base_url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("serving_in_flight_requests")
    )


def _stuck_upload(base_url: str) -> socket.socket:
    """A request whose body never finishes arriving: it holds the server until the grace period ends."""
    address = urlsplit(base_url)
    connection = socket.create_connection((address.hostname, address.port), timeout=60)
    connection.sendall(
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n"
        + b"\xff" * 100
    )
    return connection


def _new_connection_outcome(base_url: str) -> str:
    try:
        status = httpx.get(f"{base_url}/health", timeout=3).status_code
    except httpx.ConnectError:
        return "refused"
    except httpx.HTTPError as exc:
        return f"broken ({type(exc).__name__})"
    return str(status)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_sigterm_completes_accepted_requests_refuses_new_ones_and_exits_in_time(
    variant: str, start_local_service, artifact_env: dict[str, str]
) -> None:
    module, workers = VARIANTS[variant]
    service = start_local_service(
        f"{variant}-sigterm",
        module,
        workers=workers,
        env={**artifact_env, "GRACEFUL_TIMEOUT": str(GRACE_SECONDS)},
    )
    payload = Payload.image_file(IMAGES / "photo_large.jpg")
    baseline = _in_flight(service.base_url)

    def post_large() -> int:
        with httpx.Client(timeout=60) as client:
            return client.post(
                f"{service.base_url}/predict", content=payload.body, headers=payload.headers
            ).status_code

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        stuck = _stuck_upload(service.base_url)
        accepted = [pool.submit(post_large) for _ in range(IN_FLIGHT)]
        deadline = time.monotonic() + 30
        while _in_flight(service.base_url) - baseline < IN_FLIGHT + 1:
            assert time.monotonic() < deadline, "the requests never got in flight"
            time.sleep(0.02)

        signalled = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        new_connections = []
        while time.monotonic() - signalled < 3.0:
            new_connections.append(_new_connection_outcome(service.base_url))
            time.sleep(0.1)
        statuses = [future.result() for future in accepted]
        completed = time.monotonic() - signalled

    try:
        exit_code = service.process.wait(timeout=GRACE_SECONDS + EXIT_MARGIN_SECONDS)
    finally:
        stuck.close()
    exited = time.monotonic() - signalled
    first_refusal = new_connections.index("refused") if "refused" in new_connections else None
    print(
        f"\n{variant} ({workers} worker(s)): {IN_FLIGHT} in-flight requests -> {statuses}, all done "
        f"{completed:.2f} s after SIGTERM; new connections every 0.1 s: {new_connections}; "
        f"exit code {exit_code} after {exited:.2f} s (GRACEFUL_TIMEOUT={GRACE_SECONDS})"
    )
    assert statuses == [200] * IN_FLIGHT
    assert first_refusal is not None, new_connections
    assert all(outcome == "refused" for outcome in new_connections[first_refusal:]), new_connections
    assert all(outcome in {"200", "refused"} for outcome in new_connections), new_connections
    assert exit_code in {0, -signal.SIGTERM}
    assert exited <= GRACE_SECONDS + EXIT_MARGIN_SECONDS
