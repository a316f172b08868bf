"""The open-loop generator against a service that freezes once for 1 s: timed from the schedule, the stall
shows in the p99; a closed-loop run of the same service (one user) keeps its p99 low and hides it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.load.driver import LoadSpec, run_level
from tests.fixtures.serial_server import serial_server

pytestmark = [pytest.mark.live, pytest.mark.slow]

SERVICE_S, STALL_S, STALL_AFTER_S = 0.005, 1.0, 1.5


def _spec(url: str, **overrides: object) -> LoadSpec:
    base = dict(host=url, predict_path="/predict", payload_image="photo_small", payload_format="raw",
                users=1, warmup_s=0.5, duration_s=4.0)  # fmt: skip
    return LoadSpec(**{**base, **overrides})  # type: ignore[arg-type]


def _latencies(out_dir: Path) -> np.ndarray:
    return np.asarray(json.loads((out_dir / "latencies.json").read_text()))


def test_open_loop_shows_a_stall_that_closed_loop_hides(tmp_path: Path) -> None:
    with serial_server(SERVICE_S, STALL_S, STALL_AFTER_S) as url:
        window = run_level(_spec(url, mode="open", rate=40.0, seed=3), tmp_path / "open")
    open_latencies = _latencies(tmp_path / "open")
    with serial_server(SERVICE_S, STALL_S, STALL_AFTER_S) as url:
        run_level(_spec(url), tmp_path / "closed")
    closed_latencies = _latencies(tmp_path / "closed")

    # Every request scheduled in the window was sent and answered; ~40 of them fell into the stall.
    assert window["failures"] == 0 and window["requests"] == window["scheduled"] > 100
    assert np.percentile(open_latencies, 99) > 0.6 * STALL_S * 1000
    assert np.count_nonzero(open_latencies > 200) > 0.05 * len(open_latencies)
    # The closed loop met the same stall (its max) but sent almost nothing during it: the p99 hides it.
    assert closed_latencies.max() > 0.9 * STALL_S * 1000
    assert np.percentile(closed_latencies, 99) < 200
    # What the generator itself recorded: send lags, the stability verdict, and Locust's own files.
    requests = json.loads((tmp_path / "open" / "requests.json").read_text())
    assert len(requests) == window["requests"]
    assert all(r["latency_ms"] >= r["service_ms"] for r in requests)
    assert window["adherence"]["requests"] == window["requests"]
    assert not window["stability"]["stable"]  # a 1 s freeze inside 0.8 s windows cannot look stable
    assert (tmp_path / "open" / "locust_stats.csv").read_text().count("predict") >= 1


def test_open_loop_keeps_its_schedule_on_a_fast_service(tmp_path: Path) -> None:
    with serial_server(0.002) as url:
        window = run_level(_spec(url, mode="open", rate=50.0, duration_s=3.0), tmp_path / "open")
    assert window["failures"] == 0
    assert window["successes"] / window["duration_s"] == pytest.approx(50.0, rel=0.35)
    assert window["adherence"]["capped"] == 0
    assert np.percentile(_latencies(tmp_path / "open"), 99) < 100


def test_the_in_flight_cap_makes_requests_late_and_flags_the_run(tmp_path: Path) -> None:
    # Capacity 20 req/s offered 60 req/s with at most 2 outstanding: the cap holds requests back.
    with serial_server(0.05) as url:
        window = run_level(
            _spec(url, mode="open", rate=60.0, duration_s=2.0, max_in_flight=2), tmp_path / "open"
        )
    assert window["adherence"]["capped"] > 0 and window["adherence"]["behind_schedule"]
    assert window["adherence"]["lag_max_ms"] > 100


def test_open_mode_without_a_rate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rate"):
        run_level(_spec("http://127.0.0.1:9", mode="open"), tmp_path)
