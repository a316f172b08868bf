"""The report from known raw data: medians of repeats, spreads, ratios, n/a reasons, every format."""

import csv
import json
import math
from pathlib import Path

import pytest

from bench.profiles import get_profile
from bench.report import build_table, render_report
from bench.report.flags import FlagCode, Severity
from bench.results import RunDir, not_measured, write_json

LEVELS = (1, 4)


def _window(users: int, successes: int, failures: int, duration_s: float, start: float) -> dict:
    return {
        "users": users,
        "start_unix": start,
        "duration_s": duration_s,
        "stopped_by": "duration",
        "requests": successes + failures,
        "successes": successes,
        "failures": failures,
        "errors": {},
        "request_bytes": (successes + failures) * 1000,
        "response_bytes": successes * 200,
        "payload_bytes": 1000,
        "generator_cpu_percent": 95.0 if users == 4 else 20.0,
        "generator_saturated": users == 4,
        "generator_cores": [0],
    }


def _write_level(run_dir: RunDir, variant: str, repeat: int, users: int, scale: float) -> None:
    """100 requests with latencies scale*1..scale*100 ms over 10 s (repeat 1 is 20% slower)."""
    folder = run_dir.load_dir(variant, repeat, users)
    slow = 1.2 if repeat == 1 else 1.0
    latencies = [scale * slow * value for value in range(1, 101)]
    start = 1000.0 + 100 * repeat + users
    write_json(folder / "window.json", _window(users, 100, 1 if variant == "b" else 0, 10.0 * slow, start))
    write_json(folder / "latencies.json", latencies)
    samples = [
        {"t_s": 0.0, "t_unix": start - 5, "cpu_percent": 999.0, "rss_bytes": 9e9},  # warmup: excluded
        {"t_s": 5.0, "t_unix": start + 1, "cpu_percent": 50.0, "rss_bytes": 100e6},
        {"t_s": 6.0, "t_unix": start + 2, "cpu_percent": 100.0, "rss_bytes": 120e6},
    ]
    write_json(folder / "resources.json", {"samples": samples})


@pytest.fixture
def run_dir(tmp_path: Path) -> RunDir:
    run_dir = RunDir(tmp_path / "run")
    profile = get_profile("quick").with_overrides(concurrency_levels=LEVELS, repeats=2)
    write_json(
        run_dir.run_file,
        {
            "started_unix": 1000.0,
            "profile": profile.to_dict(),
            "runner": {"runner": "local"},
            "pinning": {"generator_cores": [0], "service_cores": [1], "note": "generator on core 0"},
            "baseline": "a",
            "variants": [{"name": "a"}, {"name": "b"}],
            "payloads": {"a": {"file": "/x/photo_medium.jpg", "bytes": 1000}},
            "sysinfo": {
                "cpu_model": "test cpu",
                "logical_cores": 2,
                "cgroup": {"cpu.max": "max"},
                "load_average_1m_at_start": 0.5,
                "python": "3.11",
                "libraries": {"locust": "2.47.0"},
                "git": {"commit": "abc", "dirty": False},
            },
        },
    )
    for variant, scale in (("a", 2.0), ("b", 1.0)):
        for repeat in range(2):
            for users in LEVELS:
                _write_level(run_dir, variant, repeat, users, scale)
    write_json(
        run_dir.measurement("a", "startup"),
        {
            "ready_s": [1.0, 2.0, 3.0, 4.0],
            "first_request_ms": [5.0],
            "cold_first_request_ms": [90.0, 110.0],
            "warm_request_ms": [10.0, 12.0],
        },
    )
    write_json(run_dir.measurement("b", "startup"), not_measured("url variant: not started by the bench"))
    write_json(
        run_dir.measurement("a", "footprint"),
        {
            "dependency_closure": {"total_bytes": 1000e6, "distributions": 30},
            "image": not_measured("local runner: no image"),
            "artifacts": {"total_bytes": 6e6, "files": []},
        },
    )
    write_json(
        run_dir.measurement("a", "accuracy"), {"images": 200, "correct": 190, "errors": 0, "top1": 0.95}
    )
    write_json(
        run_dir.measurement("b", "accuracy"), {"images": 200, "correct": 180, "errors": 2, "top1": 0.90}
    )
    write_json(run_dir.measurement("a", "info"), {"info": {"model_hash": "deadbeef"}})
    write_json(
        run_dir.variant_dir("b") / "errors" / "footprint.json", {"step": "x", "error": "engine gone\ntrace"}
    )
    return run_dir


def test_load_rows_are_medians_of_repeats_with_spread_and_ratio(run_dir: RunDir) -> None:
    table = build_table(run_dir.root)
    rps = table.row("c1.rps")
    # 100 successes in 10 s and in 12 s -> 10 and 8.33 req/s, median 9.17
    assert rps.cells["a"].median == pytest.approx((10.0 + 100 / 12) / 2)
    assert rps.cells["a"].summary.low == pytest.approx(100 / 12)
    assert rps.cells["b"].ratio == pytest.approx(1.0)
    p50 = table.row("c4.p50")
    # a: 2*50.5 = 101 and 121.2 -> 111.1; b is half of it
    assert p50.cells["a"].median == pytest.approx(111.1)
    assert p50.cells["b"].ratio == pytest.approx(0.5)
    assert table.row("c1.max").cells["a"].summary.high == pytest.approx(240.0)
    assert table.row("c1.failures").cells["b"].median == 1
    flag = table.row("c1.failures").cells["b"].flag
    assert flag.code is FlagCode.REQUESTS_FAILED and "failed" in flag.message
    assert table.row("c4.sent_mb_s").cells["a"].median == pytest.approx(
        (0.01 + 0.1 / 12) / 2
    )  # 100 kB in 10 s and in 12 s


def test_resources_use_only_the_measured_window(run_dir: RunDir) -> None:
    table = build_table(run_dir.root)
    assert table.row("c1.cpu_mean").cells["a"].median == pytest.approx(75.0)
    assert table.row("c1.cpu_peak").cells["a"].median == pytest.approx(100.0)
    assert table.row("c1.rss_peak_mb").cells["a"].median == pytest.approx(120.0)


def test_saturated_generator_is_flagged(run_dir: RunDir) -> None:
    table = build_table(run_dir.root)
    assert table.row("c1.rps").cells["a"].flag is None
    flag = table.row("c4.rps").cells["a"].flag
    assert flag.code is FlagCode.GENERATOR_SATURATED and flag.severity is Severity.WARNING
    assert "saturated" in flag.message
    assert any(flag.code is FlagCode.GENERATOR_SATURATED and "saturated" in str(flag) for flag in table.flags)


def test_startup_footprint_accuracy_and_reasons(run_dir: RunDir) -> None:
    table = build_table(run_dir.root)
    assert table.row("startup.ready_s").cells["a"].median == 2.5
    assert table.row("startup.ready_s.p95").cells["a"].median == pytest.approx(3.85)
    assert table.row("startup.cold_first_request_ms").cells["a"].median == 100.0
    assert table.row("startup.ready_s").cells["b"].text == "n/a (url variant: not started by the bench)"
    assert table.row("footprint.closure_mb").cells["a"].median == 1000.0
    assert table.row("footprint.image_mb").cells["a"].text == "n/a (local runner: no image)"
    assert table.row("footprint.closure_mb").cells["b"].text.startswith("n/a (failed: engine gone")
    assert table.row("accuracy.top1").cells["b"].median == pytest.approx(90.0)
    assert table.row("accuracy.top1").cells["b"].ratio == pytest.approx(90 / 95)
    assert table.row("info.model_hash").cells["a"].text == "deadbeef"


def test_every_output_is_written_and_consistent(run_dir: RunDir) -> None:
    table = render_report(run_dir)
    markdown = run_dir.report_file("md").read_text()
    assert "| metric | unit | a (baseline) | b |" in markdown
    assert "×0.50" in markdown  # b's latency ratio
    with run_dir.report_file("csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(table.rows)
    by_key = {row["key"]: row for row in rows}
    assert float(by_key["c4.p50"]["b vs a"]) == pytest.approx(0.5)
    report = json.loads(run_dir.report_file("json").read_text())
    assert [row["key"] for row in report["rows"]] == [row.key for row in table.rows]
    assert report["rows"][0]["cells"]["a"]["n"] == 2
    html = run_dir.report_file("html").read_text()
    assert html.count("data:image/png;base64,") == 4
    for name in ("glance", "throughput", "latency_percentiles", "startup"):
        assert (run_dir.plots_dir / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert not any(isinstance(v, float) and math.isnan(v) for v in report["rows"][0]["cells"]["a"].values())
