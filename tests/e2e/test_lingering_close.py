"""Early answers without a reset (issue 15 item 3): a client that sends its whole body before reading the
answer, as Python's urllib does, gets the complete 413 JSON error, not ECONNRESET, however its body is framed;
the server then closes on its own bounds (serving_core/lingering.py); keep-alive is unchanged otherwise.

The checks take the service to run against, so tests/external/test_rust_lingering_close.py runs them on the
Rust service too. Here: the real onnx service, one worker, with a 1 MiB body limit so the bodies stay small.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from serving_core.lingering import LINGER_IDLE_SECONDS, LINGER_MAX_BYTES
from tests.conftest import LiveService, start_variant
from tests.fixtures.errors import error_body_problem
from tests.fixtures.variants import startable_variants

pytestmark = pytest.mark.live

MiB = 1024 * 1024
LIMIT = MiB
OVER = 5 * MiB  # how far past the limit the bodies go: several socket buffers' worth
IO_TIMEOUT = 15.0
MAX_RESPONSE_BYTES = 64 * 1024
DIGIT = (Path(__file__).resolve().parents[2] / "images/digits/00000.png").read_bytes()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def connect(base_url: str) -> socket.socket:
    address = urlsplit(base_url)
    return socket.create_connection((address.hostname, address.port), timeout=IO_TIMEOUT)


def head(method: str, path: str, headers: dict[str, str | int]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: lingering-test", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    pieces = (body[start : start + size] for start in range(0, len(body), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def read_response(sock: socket.socket) -> RawResponse:
    """One response, framed by its Content-Length (as urllib reads it: not waiting for the close)."""
    received = b""
    while b"\r\n\r\n" not in received:
        piece = sock.recv(65536)
        assert piece, f"closed before a complete response head: {received[:300]!r}"
        received += piece
        assert len(received) < MAX_RESPONSE_BYTES, f"no end of the response head: {received[:300]!r}"
    raw_head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)
    }
    length = int(headers["content-length"])
    assert length < MAX_RESPONSE_BYTES, headers
    while len(body) < length:
        piece = sock.recv(65536)
        assert piece, f"closed after {len(body)} of the {length} bytes of the response body"
        body += piece
    return RawResponse(int(status_line.split()[1]), headers, body[:length])


def send_all_then_read(base_url: str, request: bytes) -> RawResponse:
    with connect(base_url) as sock:
        try:
            sock.sendall(request)
        except OSError as exc:
            pytest.fail(f"the server reset the connection while the body was still being sent: {exc!r}")
        return read_response(sock)


def assert_payload_too_large(response: RawResponse) -> None:
    as_httpx = httpx.Response(response.status, headers=response.headers, content=response.body)
    assert response.status == 413, response
    assert error_body_problem(as_httpx) is None, error_body_problem(as_httpx)
    assert json.loads(response.body)["error"]["code"] == "payload_too_large"
    # The rest of the body was not read: the connection cannot carry another request.
    assert response.headers.get("connection") == "close", response.headers


def check_content_length_over_the_limit(base_url: str, limit: int, connection: str) -> None:
    body = bytes(limit + OVER)
    length = {"Content-Type": "image/png", "Content-Length": len(body), "Connection": connection}
    assert_payload_too_large(send_all_then_read(base_url, head("POST", "/predict", length) + body))


def check_chunked_body_over_the_limit(base_url: str, limit: int, connection: str) -> None:
    body = chunked(bytes(limit + OVER))
    framing = {"Content-Type": "image/png", "Transfer-Encoding": "chunked", "Connection": connection}
    assert_payload_too_large(send_all_then_read(base_url, head("POST", "/predict", framing) + body))


def check_urllib_gets_the_413(base_url: str, limit: int) -> None:
    """The client of the report: urllib writes the whole body (with Connection: close) before reading."""
    request = urllib.request.Request(
        f"{base_url}/predict", data=bytes(limit + OVER), headers={"Content-Type": "image/png"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=IO_TIMEOUT)
    assert caught.value.code == 413
    assert json.loads(caught.value.read())["error"]["code"] == "payload_too_large"


def _held_client_ports(service: LiveService, ports: set[int]) -> set[int]:
    held = {
        connection.raddr.port
        for process in service.processes()
        for connection in process.net_connections("tcp")
        if connection.raddr
    }
    return held & ports


def check_stalled_uploads_are_closed(service: LiveService, limit: int, within_seconds: float) -> float:
    """Two clients stop sending in the middle of an oversized body (one with a Content-Length, one chunked):
    each gets its 413, and the server lets go of both sockets within ``within_seconds``. Returns how long."""
    declared = {"Content-Type": "image/png", "Content-Length": 40 * limit}
    framing = {"Content-Type": "image/png", "Transfer-Encoding": "chunked"}
    partial_chunks = chunked(bytes(2 * limit))[: -len(b"0\r\n\r\n")]
    requests = [
        head("POST", "/predict", declared) + bytes(2 * limit),
        head("POST", "/predict", framing) + partial_chunks,
    ]
    sockets = [connect(service.base_url) for _ in requests]
    try:
        for sock, request in zip(sockets, requests, strict=True):
            sock.sendall(request)
        for sock in sockets:
            assert_payload_too_large(read_response(sock))
        ports = {sock.getsockname()[1] for sock in sockets}
        started = time.monotonic()
        while held := _held_client_ports(service, ports):
            elapsed = time.monotonic() - started
            assert elapsed < within_seconds, (
                f"the server still holds the stalled clients {held} after {elapsed:.1f} s"
            )
            time.sleep(0.2)
        return time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()


def check_keep_alive_after_a_successful_predict(base_url: str) -> None:
    """Bodies read to their end leave the connection open: two predicts and a probe on one socket."""
    with connect(base_url) as sock:
        predict = (
            head("POST", "/predict", {"Content-Type": "image/png", "Content-Length": len(DIGIT)}) + DIGIT
        )
        for _ in range(2):
            sock.sendall(predict)
            response = read_response(sock)
            assert response.status == 200, response
            assert "close" not in response.headers.get("connection", ""), response.headers
        sock.sendall(head("GET", "/health", {}))
        assert read_response(sock).status == 200


@pytest.fixture(scope="module")
def onnx_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    service = start_variant(
        startable_variants()["onnx"],
        tmp_path_factory.mktemp("lingering"),
        name="onnx-lingering",
        workers=1,
        extra_env={"MAX_BODY_BYTES": str(LIMIT)},
    )
    yield service
    service.stop()


# "close" is what urllib sends, and what made the server reset; on "keep-alive" it read the rest unbounded.
CONNECTION_HEADERS = ["close", "keep-alive"]


@pytest.mark.parametrize("connection", CONNECTION_HEADERS)
def test_content_length_over_the_limit_sent_whole_gets_the_413(
    onnx_service: LiveService, connection: str
) -> None:
    check_content_length_over_the_limit(onnx_service.base_url, LIMIT, connection)


@pytest.mark.parametrize("connection", CONNECTION_HEADERS)
def test_chunked_body_over_the_limit_sent_whole_gets_the_413(
    onnx_service: LiveService, connection: str
) -> None:
    check_chunked_body_over_the_limit(onnx_service.base_url, LIMIT, connection)


def test_urllib_gets_the_413(onnx_service: LiveService) -> None:
    check_urllib_gets_the_413(onnx_service.base_url, LIMIT)


def test_keep_alive_after_a_successful_predict_still_works(onnx_service: LiveService) -> None:
    check_keep_alive_after_a_successful_predict(onnx_service.base_url)


def test_clients_that_stop_mid_body_are_closed_after_the_idle_limit(onnx_service: LiveService) -> None:
    elapsed = check_stalled_uploads_are_closed(onnx_service, LIMIT, LINGER_IDLE_SECONDS + 3.0)
    assert elapsed > LINGER_IDLE_SECONDS - 1.0, f"closed after {elapsed:.1f} s: before the idle limit"


def test_a_client_that_goes_on_sending_is_cut_off_after_the_byte_bound(onnx_service: LiveService) -> None:
    piece = bytes(MiB)
    attempt = LINGER_MAX_BYTES + 32 * MiB  # more than the bound plus every socket buffer on the way
    sent = 0
    with connect(onnx_service.base_url) as sock:
        sock.sendall(head("POST", "/predict", {"Content-Type": "image/png", "Content-Length": 4 * attempt}))
        try:
            while sent < attempt:
                sock.sendall(piece)
                sent += len(piece)
        except (ConnectionResetError, BrokenPipeError):  # closed with data unread: a reset, as it should
            pass
    assert LINGER_MAX_BYTES <= sent < attempt, f"cut off after {sent} bytes (bound {LINGER_MAX_BYTES})"


def test_a_lingering_connection_does_not_hold_the_graceful_shutdown(start_registered_variant) -> None:
    grace = 20
    service = start_registered_variant(
        "onnx",
        name="onnx-lingering-shutdown",
        workers=1,
        env={"MAX_BODY_BYTES": str(LIMIT), "GRACEFUL_TIMEOUT": str(grace)},
    )
    assert service.process is not None
    with connect(service.base_url) as sock:
        sock.sendall(head("POST", "/predict", {"Content-Type": "image/png", "Content-Length": 40 * LIMIT}))
        sock.sendall(bytes(2 * LIMIT))
        assert_payload_too_large(read_response(sock))
        signalled = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        # A byte every half second keeps the connection within the idle limit: only the shutdown can end it.
        while service.process.poll() is None and time.monotonic() - signalled < grace:
            with contextlib.suppress(OSError):
                sock.sendall(b"\0")
            time.sleep(0.5)
        exited = time.monotonic() - signalled
    assert service.process.poll() in {0, -signal.SIGTERM}, service.log_text()[-2000:]
    assert exited < grace / 2, f"exited {exited:.1f} s after SIGTERM: the lingering connection held it"
