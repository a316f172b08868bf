"""The stability rule on real open-loop runs: the bench's driver (a Locust child process, ``run_level``)
against three loopback stand-in servers, judged by the verdict the driver itself wrote to window.json.

One server answers in a fixed time (stable), one slows down as it serves (drift), one freezes for 0.35 s
every 2.2 s (stalls: a window or two of five catch a freeze, the others do not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.load.driver import LoadSpec, run_level
from tests.fixtures.serial_server import serial_server

pytestmark = [pytest.mark.live, pytest.mark.slow]

RATE, WARMUP_S, DURATION_S = 40.0, 0.5, 5.0  # windows of 1 s: 40 requests expected in each
# A shared machine can stall one window of the steady server's run (CI once saw 11 of 33 requests above the
# pooled p90 in one window: a real hiccup, which the rule is right to flag). The claim is that a steady server
# on a steady machine passes, so it gets a few tries; the drifting and stalling servers get one, as noise can
# only add failed checks to theirs.
STEADY_TRIES = 3


def measure(out_dir: Path, service_s: float, **behaviour: float) -> dict[str, Any]:
    with serial_server(service_s, **behaviour) as url:
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


def measure_steady(out_dir: Path) -> dict[str, Any]:
    window: dict[str, Any] = {}
    for attempt in range(STEADY_TRIES):
        window = measure(out_dir / f"try-{attempt}", 0.005)
        if window["stability"]["stable"]:
            break
    return window


def test_a_steady_server_passes_a_slowing_one_and_a_stalling_one_fail(tmp_path: Path) -> None:
    steady = measure_steady(tmp_path / "steady")
    slowing = measure(tmp_path / "slowing", 0.003, slower_per_s=0.004)
    stalling = measure(tmp_path / "stalling", 0.005, stall_s=0.35, stall_after_s=2.2, stall_every_s=2.2)

    for window in (steady, slowing, stalling):
        assert window["failures"] == 0 and len(window["stability"]["windows"]) == 5
    assert steady["stability"]["stable"], steady["stability"]["reason"]
    assert not slowing["stability"]["stable"] and "drift" in failed(slowing), slowing["stability"]["reason"]
    assert not stalling["stability"]["stable"] and "stalls" in failed(stalling), stalling["stability"][
        "reason"
    ]
