"""The stability rule on real open-loop runs: the bench's driver (a Locust child process, ``run_level``)
against three loopback stand-in servers, judged by the verdict the driver itself wrote to window.json.

One server answers in a fixed time (stable), one slows down as it serves (drift), one freezes for 0.35 s
every 2.2 s (stalls: a window or two of five catch a freeze, the others do not).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.load.driver import LoadSpec, run_level

pytestmark = [pytest.mark.live, pytest.mark.slow]

PREDICTION = json.dumps(
    {"label": "0", "class_index": 0, "confidence": 1.0, "top_k": [], "variant": "stand-in", "model_hash": "0"}
).encode()
RATE, WARMUP_S, DURATION_S = 40.0, 0.5, 5.0  # windows of 1 s: 40 requests expected in each


@dataclass
class Behaviour:
    service_s: float
    slower_per_s: float = 0.0  # added to the service time per second since the first request
    stall_every_s: float = 0.0
    stall_s: float = 0.0


class _Serial:
    """One request at a time (a lock), so the service time sets the capacity."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.lock = threading.Lock()
        self.first: float | None = None
        self.last_stall = 0.0

    def serve(self) -> None:
        with self.lock:
            now = time.perf_counter()
            self.first = now if self.first is None else self.first
            since = now - self.first
            b = self.behaviour
            if b.stall_every_s and since - self.last_stall >= b.stall_every_s:
                self.last_stall = since
                time.sleep(b.stall_s)
            time.sleep(b.service_s + b.slower_per_s * since)


def _handler(server: _Serial) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(b'{"status": "ok"}')

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            server.serve()
            self._send(PREDICTION)

    return Handler


@contextmanager
def stand_in(behaviour: Behaviour) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(_Serial(behaviour)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def measure(behaviour: Behaviour, out_dir: Path) -> dict[str, Any]:
    with stand_in(behaviour) as url:
        spec = LoadSpec(
            host=url,
            predict_path="/predict",
            payload_image="photo_small",
            payload_format="raw",
            users=1,
            warmup_s=WARMUP_S,
            duration_s=DURATION_S,
            mode="open",
            rate=RATE,
            seed=7,
        )
        return run_level(spec, out_dir)


def failed(window: dict[str, Any]) -> set[str]:
    return {check["name"] for check in window["stability"]["checks"] if not check["passed"]}


def test_a_steady_server_passes_a_slowing_one_and_a_stalling_one_fail(tmp_path: Path) -> None:
    steady = measure(Behaviour(0.005), tmp_path / "steady")
    slowing = measure(Behaviour(0.003, slower_per_s=0.004), tmp_path / "slowing")
    stalling = measure(Behaviour(0.005, stall_every_s=2.2, stall_s=0.35), tmp_path / "stalling")

    for window in (steady, slowing, stalling):
        assert window["failures"] == 0 and len(window["stability"]["windows"]) == 5
    assert steady["stability"]["stable"], steady["stability"]["reason"]
    assert not slowing["stability"]["stable"] and "drift" in failed(slowing), slowing["stability"]["reason"]
    assert not stalling["stability"]["stable"] and "stalls" in failed(stalling), stalling["stability"][
        "reason"
    ]
