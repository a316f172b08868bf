"""The analysis rows of the report from known raw data: serving efficiency arithmetic, the ceiling's stage
breakdown, open-loop percentiles and late sends, the SLO result, n/a for an external variant, the plots.
"""

from pathlib import Path

import pytest

from bench.analysis.queueing import predicted_quantile_ms
from bench.profiles import get_profile
from bench.report import build_table, render_report
from bench.report.flags import FlagCode
from bench.results import RunDir, not_measured, write_json

CEILING_RPS = {0: 40.0, 1: 50.0}
HTTP_RPS = {0: (10.0, 30.0), 1: (12.0, 40.0)}  # per repeat: concurrency 1, concurrency 4


def _window(successes: int, duration_s: float, **extra: object) -> dict:
    return {"users": 1, "start_unix": 0.0, "duration_s": duration_s, "successes": successes,
            "failures": 0, "requests": successes, "errors": {}, "request_bytes": 0, "response_bytes": 0,
            "payload_bytes": 1, "generator_cpu_percent": 10.0, "generator_saturated": False,
            "generator_cores": [0], **extra}  # fmt: skip


def _ceiling(rps: float) -> dict:
    latency = {"p50": 20.0, "p90": 25.0, "p99": 30.0, "min": 15.0, "max": 31.0}
    stages = {"decode": 5.0, "preprocess": 8.0, "inference": 6.0, "postprocess": 1.0}
    return {"threads": 1, "runtime": "pytorch-eager", "throughput_rps": rps, "peak_rss_mb": 300.0,
            "latency_ms": latency, "stages_ms": stages}  # fmt: skip


@pytest.fixture
def run_dir(tmp_path: Path) -> RunDir:
    run_dir = RunDir(tmp_path / "run")
    profile = get_profile("quick").with_overrides(concurrency_levels=(1, 4), repeats=2, open_runs=1)
    write_json(run_dir.run_file, {
        "started_unix": 0.0, "profile": profile.to_dict(), "runner": {"runner": "local"},
        "pinning": {"note": "test"}, "baseline": "py", "variants": [{"name": "py"}, {"name": "ext"}],
        "payloads": {}, "open_loop": {"rate": 20.0, "basis": "test"},
        "sysinfo": {"cpu_model": "cpu", "logical_cores": 2, "cgroup": {"cpu.max": "max"},
                    "load_average_1m_at_start": 0.0, "python": "3.11", "libraries": {},
                    "git": {"commit": "abc", "dirty": False}},
    })  # fmt: skip
    for variant in ("py", "ext"):
        for repeat in range(2):
            for users, rps in zip((1, 4), HTTP_RPS[repeat], strict=True):
                folder = run_dir.load_dir(variant, repeat, users)
                write_json(folder / "window.json", _window(int(rps * 10), 10.0))
                write_json(folder / "latencies.json", [20.0] * 9 + [40.0])  # mean 22 ms at concurrency 1
            ceiling = _ceiling(CEILING_RPS[repeat]) if variant == "py" else not_measured("external service")
            write_json(run_dir.ceiling_dir(variant, repeat) / "ceiling.json", ceiling)
        folder = run_dir.openloop_dir(variant, 0)
        requests = [{"scheduled_s": i / 20, "latency_ms": float(i + 1), "service_ms": 1.0, "send_lag_ms": 0.0,
                     "capped": False, "ok": True} for i in range(100)]  # fmt: skip
        adherence = {"late_fraction": 0.03, "behind_schedule": True}
        stability = {"stable": True, "reason": "ok", "windows": []}
        write_json(
            folder / "window.json", _window(100, 5.0, rate=20.0, adherence=adherence, stability=stability)
        )
        write_json(folder / "latencies.json", [r["latency_ms"] for r in requests])
        write_json(folder / "requests.json", requests)
    probes = [{"rate": 5.0, "p99_ms": 30.0, "attempts": 1}, {"rate": 60.0, "p99_ms": 900.0, "attempts": 2}]
    write_json(
        run_dir.slo_dir("py") / "search.json",
        {"slo_ms": 100.0, "max_rps": 33.5, "flags": [], "probes": probes},
    )
    return run_dir


def test_serving_efficiency_pairs_each_repeats_best_http_throughput_with_its_ceiling(run_dir: RunDir) -> None:
    cell = build_table(run_dir.root).row("efficiency").cells["py"]
    assert sorted(cell.values) == pytest.approx([100 * 30 / 40, 100 * 40 / 50])  # 75% and 80%
    assert cell.median == pytest.approx(77.5) and cell.flag is None


def test_an_http_throughput_above_the_ceiling_is_flagged(run_dir: RunDir) -> None:
    write_json(run_dir.ceiling_dir("py", 0) / "ceiling.json", _ceiling(20.0))  # HTTP did 30 req/s
    table = build_table(run_dir.root)
    flag = table.row("efficiency").cells["py"].flag
    assert flag is not None and flag.code is FlagCode.UNSTABLE_CEILING and "unstable ceiling" in flag.message
    assert any(
        flag.code is FlagCode.UNSTABLE_CEILING and "unstable ceiling" in str(flag) for flag in table.flags
    )


def test_an_external_variant_has_no_ceiling_and_says_why(run_dir: RunDir) -> None:
    table = build_table(run_dir.root)
    for key in ("ceiling.rps", "ceiling.stage.inference", "efficiency"):
        assert table.row(key).cells["ext"].text == "n/a (external service)"


def test_the_stage_breakdown_and_ceiling_figures_are_the_medians_of_repeats(run_dir: RunDir) -> None:
    table = build_table(run_dir.root)
    assert table.row("ceiling.rps").cells["py"].median == 45.0
    stages = {s: table.row(f"ceiling.stage.{s}").cells["py"].median for s in ("decode", "inference")}
    assert stages == {"decode": 5.0, "inference": 6.0}


def test_open_loop_rows_come_from_the_schedule_corrected_latencies(run_dir: RunDir) -> None:
    table = build_table(run_dir.root)
    assert table.row("open.p50").cells["py"].median == pytest.approx(50.5)
    assert table.row("open.p99").cells["py"].median == pytest.approx(99.01)
    assert table.row("open.service_p99").cells["py"].median == 1.0
    late = table.row("open.late").cells["py"]
    assert late.median == pytest.approx(3.0) and late.flag is not None and "behind" in late.flag.message
    assert late.flag.code is FlagCode.BEHIND_SCHEDULE
    assert any("behind its schedule" in str(flag) for flag in table.flags)
    model = table.row("open.model_p99").cells["py"]
    assert model.median == pytest.approx(predicted_quantile_ms("M/D/c", 20.0, 22.0, 1))


def test_slo_rows_show_the_search_result_or_why_it_is_missing(run_dir: RunDir) -> None:
    table = build_table(run_dir.root)
    assert table.row("slo.max_rps").cells["py"].median == 33.5
    assert table.row("slo.probes").cells["py"].median == 3.0
    assert "not in this profile" in (table.row("slo.max_rps").cells["ext"].text or "")


def test_the_analysis_plots_are_drawn_and_embedded(run_dir: RunDir) -> None:
    render_report(run_dir)
    for name in ("stages", "latency_cdf_open_loop", "queueing_model"):
        assert (run_dir.plots_dir / f"{name}.png").stat().st_size > 5_000
    html = run_dir.report_file("html").read_text()
    assert 'alt="queueing_model"' in html and 'alt="latency_cdf_open_loop"' in html


def test_the_sweep_and_operator_plots_are_drawn_from_their_raw_files(run_dir: RunDir) -> None:
    cells = [{"height": h, "width": w, "batch": b, "images_per_s": 10.0 * b, "latency_per_image_ms": 5.0 / b}
             for h, w in ((224, 224), (480, 640)) for b in (1, 2, 4)]  # fmt: skip
    sweep = {"runtime": "pytorch-eager", "threads": 1, "batch_sizes": [1, 2, 4],
             "image_sizes": [[224, 224], [480, 640]], "cells": cells}  # fmt: skip
    top = [{"operator": f"op{i}", "total_ms_per_call": float(i), "share": 0.1} for i in range(12)]
    write_json(run_dir.analysis_dir("py") / "sweep.json", sweep)
    write_json(run_dir.analysis_dir("py") / "profile.json", {"profiler": "torch.profiler", "top": top})
    write_json(run_dir.analysis_dir("ext") / "sweep.json", not_measured("external service"))
    render_report(run_dir)
    for name in ("sweep", "top_operators"):
        assert (run_dir.plots_dir / f"{name}.png").stat().st_size > 5_000
    assert 'alt="sweep"' in run_dir.report_file("html").read_text()
