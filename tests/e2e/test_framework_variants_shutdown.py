"""The framework variants start process trees of their own: ray_serving a whole Ray instance (GCS, raylet, its
agents, the Serve controller, HTTP proxy and replica workers), bentoml_serving BentoML's arbiter and workers.
SIGTERM to the process the bench started must answer the requests already in flight, exit within the grace
period (plus the framework's own teardown) and leave no process of the tree behind.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fixtures.load import Payload
from tests.fixtures.variants import local_variants

pytestmark = [pytest.mark.live, pytest.mark.slow]

IMAGES = Path(__file__).resolve().parents[2] / "images"
FRAMEWORK_VARIANTS = [name for name in ("ray-serve", "bentoml") if name in local_variants()]
GRACE_SECONDS = 5
IN_FLIGHT = 2
# Ray: Serve's and Ray's own shutdown after the replica's drain (measured 3-5 s on 2 shared cores).
TEARDOWN_SECONDS = 15.0


def _in_flight(base_url: str) -> float:
    exposition = httpx.get(f"{base_url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("serving_in_flight_requests")
    )


def _left_behind(tree: list[psutil.Process]) -> list[str]:
    left = []
    for process in tree:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid} {' '.join(process.cmdline())[:100]}")
        except psutil.NoSuchProcess:
            continue
    return left


@pytest.mark.parametrize("variant", FRAMEWORK_VARIANTS)
def test_stop_answers_requests_in_flight_and_leaves_no_process_behind(
    variant: str, start_registered_variant
) -> None:
    service = start_registered_variant(
        variant, name=f"{variant}-tree", env={"GRACEFUL_TIMEOUT": str(GRACE_SECONDS)}
    )
    tree = service.processes()
    assert len(tree) > 1, "the framework runs more than one process"
    payload = Payload.image_file(IMAGES / "photo_large.jpg")
    baseline = _in_flight(service.base_url)

    def post() -> int:
        with httpx.Client(base_url=service.base_url, timeout=60) as client:
            return client.post("/predict", content=payload.body, headers=payload.headers).status_code

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        answers = [pool.submit(post) for _ in range(IN_FLIGHT)]
        deadline = time.monotonic() + 30
        while _in_flight(service.base_url) - baseline < IN_FLIGHT:
            assert time.monotonic() < deadline, "the requests never got in flight"
            time.sleep(0.02)
        signalled = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        statuses = [answer.result() for answer in answers]
    exit_code = service.process.wait(timeout=GRACE_SECONDS + TEARDOWN_SECONDS + 10)
    exited = time.monotonic() - signalled
    deadline = time.monotonic() + 5
    while (left := _left_behind(tree)) and time.monotonic() < deadline:
        time.sleep(0.2)
    print(
        f"\n{variant}: {len(tree)} processes; in flight at SIGTERM -> {statuses}; exit code {exit_code} "
        f"after {exited:.2f} s (GRACEFUL_TIMEOUT={GRACE_SECONDS}); left behind: {left}"
    )
    assert statuses == [200] * IN_FLIGHT
    assert exit_code in {0, -signal.SIGTERM}
    assert exited <= GRACE_SECONDS + TEARDOWN_SECONDS
    assert not left, left
