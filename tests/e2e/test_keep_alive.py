"""Idle keep-alive connections: the server keeps one open for KEEP_ALIVE_TIMEOUT seconds, then closes it.

A server that closes an idle connection before its client does races the client's next request on it: a POST
written as the server closes fails and is not retried (serving_core/settings.py, KEEP_ALIVE_TIMEOUT_DEFAULT).
So the default must outlast the 5 s that uvicorn and actix-web default to, and the setting must reach the
server that owns the socket: serving_core's uvicorn, BentoML's, Ray Serve's HTTP proxy (the Rust service:
tests/external/test_rust_keep_alive.py).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveService, start_variant
from tests.e2e.test_lingering_close import connect, head, read_response
from tests.fixtures.variants import local_variants, startable_variants

pytestmark = pytest.mark.live

SHORT_TIMEOUT_S = 2
# The longest uvicorn and actix-web keep an idle connection by default: the default must outlast it.
LIBRARY_DEFAULT_S = 5.0
# How late a close may come: uvicorn's timer runs on a busy event loop, actix-web's on its own timer tick.
CLOSE_LATENESS_S = 2.0
FRAMEWORK_VARIANTS = [name for name in ("ray-serve", "bentoml") if name in local_variants()]


def health_on(sock: socket.socket) -> int:
    sock.sendall(head("GET", "/health", {}))
    return read_response(sock).status


def check_the_server_closes_an_idle_connection_after(base_url: str, timeout_s: float) -> None:
    """Open while idle for half the timeout; closed by the server (EOF, not a reset) once it has passed."""
    with connect(base_url) as sock:
        assert health_on(sock) == 200
        time.sleep(timeout_s / 2)
        assert health_on(sock) == 200, "the idle connection was closed before its keep-alive timeout"
        idle_since = time.monotonic()
        sock.settimeout(timeout_s + CLOSE_LATENESS_S + 3)
        try:
            received = sock.recv(1)
        except TimeoutError:
            pytest.fail(f"the server kept the idle connection open past {timeout_s} s")
        closed_after = time.monotonic() - idle_since
    assert received == b"", received
    assert timeout_s - 0.5 <= closed_after <= timeout_s + CLOSE_LATENESS_S, (
        f"closed after {closed_after:.2f} s idle; KEEP_ALIVE_TIMEOUT={timeout_s}"
    )


def check_an_idle_connection_outlasts_the_library_default(base_url: str) -> None:
    with connect(base_url) as sock:
        assert health_on(sock) == 200
        time.sleep(LIBRARY_DEFAULT_S + 1)
        assert health_on(sock) == 200, f"closed after {LIBRARY_DEFAULT_S + 1} s idle"


@pytest.fixture(scope="module")
def onnx_short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    service = start_variant(
        startable_variants()["onnx"],
        tmp_path_factory.mktemp("keep-alive"),
        name="onnx-keep-alive",
        extra_env={"KEEP_ALIVE_TIMEOUT": str(SHORT_TIMEOUT_S)},
    )
    yield service
    service.stop()


def test_serving_core_closes_an_idle_connection_after_its_keep_alive_timeout(onnx_short: LiveService) -> None:
    check_the_server_closes_an_idle_connection_after(onnx_short.base_url, SHORT_TIMEOUT_S)


def test_serving_core_keeps_an_idle_connection_past_uvicorns_default(tmp_path: Path) -> None:
    service = start_variant(startable_variants()["onnx"], tmp_path, name="onnx-keep-alive-default")
    try:
        check_an_idle_connection_outlasts_the_library_default(service.base_url)
    finally:
        service.stop()


@pytest.mark.slow
@pytest.mark.parametrize("variant", FRAMEWORK_VARIANTS)
def test_a_framework_server_closes_an_idle_connection_after_its_keep_alive_timeout(
    tmp_path: Path, variant: str
) -> None:
    service = start_variant(
        local_variants()[variant],
        tmp_path,
        name=f"{variant}-keep-alive",
        extra_env={"KEEP_ALIVE_TIMEOUT": str(SHORT_TIMEOUT_S)},
    )
    try:
        check_the_server_closes_an_idle_connection_after(service.base_url, SHORT_TIMEOUT_S)
    finally:
        service.stop()
