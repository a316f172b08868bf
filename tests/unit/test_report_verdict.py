"""The verdict from known inputs: the ranking rule (SLO rows, quick profile, ties, a variant not measured),
the sentence of where the time goes, the cores text, where the verdict sits in every output, and the plots
(linear axes, concurrency ticks of exactly the levels measured, one colour per variant on every figure)."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure

from bench.records import load_run
from bench.report import build_table, render_report
from bench.report.flags import FlagCode, info
from bench.report.layout import verdict_header, verdict_lines
from bench.report.palette import variant_colors
from bench.report.plots import glance_figure, report_figures, throughput_figure
from bench.report.render import to_markdown
from bench.report.table import Cell, Row, Table, tabulate
from bench.report.verdict import (
    Basis,
    Cores,
    TimeBreakdown,
    assign_ranks,
    build_verdict,
    cores_of,
    ranking_key,
    time_sentence,
)
from bench.results import RunDir

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "bench_run"
Values = list[float] | str  # a cell's raw values, or its n/a text


def _run(variants: list[str], levels: list[int], **extra: Any) -> dict[str, Any]:
    env = {"HOST": "127.0.0.1", "ONNX_WORKERS": "1", "THREADS": "1"}
    return {
        "profile": {
            "name": "quick",
            "concurrency_levels": levels,
            "slo_ms": 100.0,
            "payload": "photo_medium",
        },
        "pinning": {"service_cores": [1]},
        "sysinfo": {"logical_cores": 4},
        "baseline": variants[0],
        "variants": [{"name": name, "local": {"env": env}} for name in variants],
        **extra,
    }


def make_table(
    figures: dict[str, dict[str, Values]], variants: list[str], levels: list[int], **run: Any
) -> Table:
    """A table of the given rows (key -> variant -> values or n/a text); absent cells are not measured."""
    rows = []
    for key, cells in figures.items():
        better = "lower" if key.endswith(("p99", "p50", "_ms", "_s")) else "higher"
        row_cells = {}
        for variant in variants:
            value = cells.get(variant, "n/a (not measured)")
            row_cells[variant] = Cell(text=value) if isinstance(value, str) else Cell(values=list(value))
        rows.append(Row(key.split(".")[0], key, key, "", better, row_cells))
    frame = tabulate(rows, variants, variants[0])
    return Table(variants, variants[0], rows, [], _run(variants, levels, **run), [], frame)


def closed(rps: dict[str, dict[int, list[float]]]) -> dict[str, dict[str, Values]]:
    """c<N>.rps rows and a p99 of 1000 / req/s ms per level."""
    levels = sorted({users for by_level in rps.values() for users in by_level})
    rows: dict[str, dict[str, Values]] = {}
    for users in levels:
        rows[f"c{users}.rps"] = {v: by[users] for v, by in rps.items() if users in by}
        rows[f"c{users}.p99"] = {v: [1000.0 / by[users][0]] for v, by in rps.items() if users in by}
    return rows


# --- the ranking --------------------------------------------------------------------------------------


def test_quick_profile_ranks_by_the_highest_level_then_c1() -> None:
    rows = closed({"a": {1: [5.0], 8: [10.0]}, "b": {1: [9.0], 8: [30.0]}, "c": {1: [8.0], 8: [20.0]}})
    verdict = build_verdict(make_table(rows, ["a", "b", "c"], [1, 8]))
    assert verdict.rule.basis is Basis.CLOSED
    assert verdict.rule.keys == ("c8.rps", "c1.rps")
    assert (
        "highest concurrency measured (c8" in verdict.rule.text and "ties broken by c1" in verdict.rule.text
    )
    assert [(row.variant, row.rank) for row in verdict.rows] == [("b", 1), ("c", 2), ("a", 3)]
    best = verdict.rows[0]
    assert best.figure == 30.0 and best.rps == {1: 9.0, 8: 30.0}
    assert best.ratio == pytest.approx(3.0) and best.p99_ms == pytest.approx(1000 / 30)
    assert verdict.rows[2].is_baseline and verdict.rows[2].ratio == 1.0


def test_a_tie_on_the_ranking_figure_is_broken_by_c1_and_a_full_tie_shares_the_rank() -> None:
    rows = closed(
        {
            "a": {1: [5.0], 8: [20.0]},
            "b": {1: [7.0], 8: [20.0]},  # same c8 as a, better c1
            "c": {1: [6.0], 8: [40.0]},
            "d": {1: [5.0], 8: [20.0]},  # the same figures as a: they share a rank
        }
    )
    ranked = [
        (row.variant, row.rank, row.tied)
        for row in build_verdict(make_table(rows, list("abcd"), [1, 8])).rows
    ]
    assert ranked == [("c", 1, False), ("b", 2, False), ("a", 3, True), ("d", 3, True)]
    assert assign_ranks({"x": [1.0], "y": [1.0], "z": [0.5]}) == [
        ("x", 1, True),
        ("y", 1, True),
        ("z", 3, False),
    ]


def test_a_variant_without_the_ranking_figure_ranks_last_marked_not_measured() -> None:
    rows = closed({"a": {1: [5.0], 8: [10.0]}, "c": {1: [8.0], 8: [20.0]}})
    rows["c8.rps"]["b"] = "n/a (failed: connection refused)"
    rows["c1.rps"]["b"] = [50.0]  # a fast c1 does not lift it: the ranking figure is missing
    verdict = build_verdict(make_table(rows, ["a", "b", "c"], [1, 8]))
    assert [(row.variant, row.rank) for row in verdict.rows] == [("c", 1), ("a", 2), ("b", None)]
    last = verdict.rows[-1]
    assert math.isnan(last.figure) and last.missing == "failed: connection refused"
    line = verdict_lines(verdict)[-1]
    assert line[:3] == ["—", "b", "not measured (failed: connection refused)"]
    assert ranking_key([math.nan, 50.0]) > ranking_key([0.0, 0.0])  # measured (even 0) before not measured


def test_a_run_without_closed_loop_figures_ranks_nobody() -> None:
    verdict = build_verdict(make_table({"accuracy.top1": {"a": [97.0]}}, ["a", "b"], [1, 8]))
    assert verdict.rule.keys == () and verdict.rule.text.startswith("No closed-loop throughput measured")
    assert [(row.variant, row.rank) for row in verdict.rows] == [("a", None), ("b", None)]
    assert [line[2] for line in verdict_lines(verdict)] == ["not measured", "not measured"]
    assert verdict_header(verdict)[2:4] == ["req/s", "p99 ms at c?"]


def test_the_slo_search_rows_rank_first_with_the_p99_at_that_rate() -> None:
    rows = closed({"a": {1: [5.0], 8: [40.0]}, "b": {1: [9.0], 8: [30.0]}, "c": {1: [8.0], 8: [20.0]}})
    rows["slo.max_rps"] = {"a": [12.0], "b": [25.0], "c": [12.0]}
    rows["slo.p99_at_max"] = {"a": [90.0], "b": [80.0], "c": [99.0]}
    verdict = build_verdict(make_table(rows, ["a", "b", "c"], [1, 8]))
    assert verdict.rule.basis is Basis.SLO and verdict.rule.keys == ("slo.max_rps", "c8.rps", "c1.rps")
    assert "p99 <= 100 ms" in verdict.rule.text
    assert [(row.variant, row.rank) for row in verdict.rows] == [("b", 1), ("a", 2), ("c", 3)]  # a, c: c8
    assert [row.p99_ms for row in verdict.rows] == [80.0, 90.0, 99.0]
    assert verdict.rows[0].ratio == pytest.approx(25 / 12)
    header = verdict_header(verdict)
    assert header[2:5] == ["max req/s, p99 <= 100 ms", "c1 req/s", "c8 req/s"]


def test_the_quick_case_shows_the_ranking_level_once() -> None:
    verdict = build_verdict(make_table(closed({"a": {1: [5.0], 8: [10.0]}}), ["a"], [1, 8]))
    header = verdict_header(verdict)
    assert header[2:5] == ["c8 req/s", "c1 req/s", "p99 ms at c8"]
    assert header[-2:] == ["where the time goes", "flags"]


def test_a_failed_gate_and_a_drop_in_accuracy_are_flagged_on_the_line() -> None:
    rows = closed({"a": {1: [5.0]}, "b": {1: [9.0]}, "c": {1: [8.0]}})
    rows["accuracy.top1"] = {"a": [97.2], "b": [97.2], "c": [95.0]}
    rows["approximation.verdict"] = {"a": "n/a (the exact reference of b)", "b": "FAILED (gate 2)"}
    flags = {row.variant: row.flags for row in build_verdict(make_table(rows, ["a", "b", "c"], [1])).rows}
    assert flags["a"] == ()
    assert flags["b"] == ("approximation gates FAILED (gate 2)",)
    assert flags["c"] == ("top-1 accuracy dropped -2.2 pp vs a",)


def test_overlapping_repeats_are_flagged_against_the_variant_above() -> None:
    rows = closed({"a": {1: [9.0, 12.0]}, "b": {1: [9.5, 10.5]}, "c": {1: [1.0, 2.0]}})
    flags = {row.variant: row.flags for row in build_verdict(make_table(rows, ["a", "b", "c"], [1])).rows}
    assert flags["b"] == ("repeat range overlaps the variant ranked above (a)",) and flags["c"] == ()


# --- the sentence and the cores ----------------------------------------------------------------------


def test_the_sentence_from_known_stage_numbers() -> None:
    known = TimeBreakdown(37.0, 10.7, 20.0, 8.2, 0.1, http_c1_p50_ms=41.0, floor_multiple=3.7)
    assert time_sentence(known) == (
        "decode 10.7 ms + preprocess 20.0 + inference 8.2 of 37.0 ms in process;"
        " HTTP adds 4.0 ms at c1 (p50); 3.7x its floor"
    )
    fused = TimeBreakdown(25.1, 11.8, 0.02, 15.6, 2.0, fused=True, http_c1_p50_ms=20.0)
    assert time_sentence(fused) == (
        "decode 11.8 ms + inference 15.6 (preprocessing fused in) + postprocess 2.0 of 25.1 ms in process;"
        " HTTP c1 p50 20.0 ms is below that (measured at another time); floor not measured"
    )
    external = TimeBreakdown(http_c1_p50_ms=52.3, missing="external service")
    assert time_sentence(external) == "HTTP only: p50 52.3 ms at c1; no in-process figures (external service)"
    assert time_sentence(TimeBreakdown(missing="not measured")) == "not measured"


def test_the_sentence_is_built_from_the_table_rows() -> None:
    rows = closed({"a": {1: [10.0]}})
    rows |= {
        "c1.p50": {"a": [45.0]},
        "ceiling.p50": {"a": [37.0]},
        "inprocess.photo_medium.multiple": {"a": [3.7]},
    }
    rows |= {f"ceiling.stage.{name}": {"a": [ms]} for name, ms in
             (("decode", 10.7), ("preprocess", 20.0), ("inference", 8.2), ("postprocess", 0.1))}  # fmt: skip
    verdict = build_verdict(make_table(rows, ["a"], [1]))
    assert verdict.rows[0].time_goes == (
        "decode 10.7 ms + preprocess 20.0 + inference 8.2 of 37.0 ms in process;"
        " HTTP adds 8.0 ms at c1 (p50); 3.7x its floor"
    )


def test_a_fused_preprocessing_flag_reads_as_fused() -> None:
    rows: dict[str, dict[str, Values]] = {"c1.rps": {"a": [10.0]}, "ceiling.p50": {"a": [25.0]}}
    rows |= {f"ceiling.stage.{s}": {"a": [5.0]} for s in ("decode", "preprocess", "inference")}
    table = make_table(rows, ["a"], [1])
    table.row("ceiling.stage.preprocess").cells["a"].flag = info(FlagCode.FUSED_PREPROCESSING, "fused")
    assert (
        build_verdict(table)
        .rows[0]
        .time_goes.startswith("decode 5.0 ms + inference 5.0 (preprocessing fused in)")
    )


def test_the_cores_text() -> None:
    run = _run(["one", "two", "ext"], [1])
    run["variants"][1]["local"]["env"] = {"TORCH_WORKERS": "2", "THREADS": "1"}
    run["variants"][2] = {"name": "ext", "url": "http://127.0.0.1:9000"}
    assert cores_of(run, "one").text == "1 core (1 worker x 1 thread)"
    assert cores_of(run, "two") == Cores(1, 2, 1, pinned=True)
    assert cores_of(run, "two").text == "1 core (2 workers x 1 thread)"
    assert cores_of(run, "ext").text == "external service (cores not set by the bench)"
    run["pinning"] = {"service_cores": None}  # not pinned: the machine's logical cores
    run["variants"][0]["local"]["env"] = {"WORKERS": "1", "THREADS": "4"}
    assert cores_of(run, "one").text == "4 cores, not pinned (1 worker x 4 threads)"
    run["pinning"] = {"service_cores": [2, 3]}
    run["variants"][0]["local"]["env"] = {}
    assert cores_of(run, "one").text == "2 cores"


# --- the outputs --------------------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> RunDir:
    root = tmp_path / "run"
    root.mkdir()
    shutil.copy(FIXTURE / "run.json", root / "run.json")
    shutil.copytree(FIXTURE / "raw", root / "raw")
    return RunDir(root)


def test_the_verdict_comes_first_in_markdown_html_and_json(run_dir: RunDir) -> None:
    table = render_report(run_dir)
    markdown = run_dir.report_file("md").read_text()
    assert markdown == to_markdown(table)
    assert markdown.index("## Verdict") < markdown.index("](plots/glance.png)") < markdown.index("| metric |")
    verdict_lines_md = markdown.split("## Verdict")[1].split("![")[0].strip().splitlines()
    assert verdict_lines_md[0].startswith("Ranked by the max sustainable req/s with p99 <= 100 ms")
    assert [line.split(" | ")[1] for line in verdict_lines_md[4:]] == ["torch (baseline) ⚠", "onnx ⚠"]
    torch_line, onnx_line = verdict_lines_md[4:]
    assert "SLO search unsettled (see Flags); c1 repeats spread" in torch_line
    # onnx's 0 req/s is far below what the M/D/c model allows for its service time
    assert "SLO limit set by slow outliers, not queueing (see Flags); c1 repeats spread" in onnx_line
    assert all(line.endswith("machine busy at start |") for line in verdict_lines_md[4:])  # load 4.03

    html = run_dir.report_file("html").read_text()
    assert (
        html.index('<table id="verdict">')
        < html.index('<img id="glance"')
        < html.index('<table id="detail">')
    )
    body = re.search(r'<table id="verdict">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body is not None and body.group(1).count("<tr") == len(table.variants)
    assert re.search(r'<img id="glance" class="plot" alt="[^"]+" src="data:image/png;base64,', html)
    plots = re.findall(
        r'<img (?:id="glance" )?class="plot" alt="[^"]*" src="data:image/png;base64,[^"]+">', html
    )
    assert len(plots) == len(list(run_dir.plots_dir.glob("*.png"))) == html.count("<img")
    assert not re.search(
        r'(src|href)="(https?:)?//|<script|<link|@import|url\(', html
    )  # nothing from the network

    report = json.loads(run_dir.report_file("json").read_text())
    assert list(report)[:2] == ["title", "verdict"]
    verdict = report["verdict"]
    assert verdict["basis"] == "slo" and verdict["ranking_row"] == "slo.max_rps"
    assert [(row["rank"], row["variant"]) for row in verdict["rows"]] == [(1, "torch"), (2, "onnx")]
    torch = verdict["rows"][0]
    assert torch["ranking_figure"] == pytest.approx(2.52, abs=0.01) and torch["p99_ms"] == pytest.approx(
        78.5, abs=0.1
    )
    assert torch["cores"]["text"] == "1 core (1 worker x 1 thread)" and torch["rps"].keys() == {"c1", "c2"}
    assert verdict["rows"][1]["p99_ms"] is None  # the SLO was missed at the lowest rate: no p99 at a rate


# --- the plots ----------------------------------------------------------------------------------------


@pytest.fixture
def figures(run_dir: RunDir) -> Iterator[dict[str, Figure]]:
    drawn = report_figures(build_table(run_dir.root), load_run(run_dir))
    yield drawn
    for figure in drawn.values():
        plt.close(figure)


def _labelled_colors(figure: Figure, variants: list[str]) -> dict[str, set[str]]:
    """Variant -> the colours of the artists labelled with its name (or "<name> (...)") in a figure."""
    found: dict[str, set[str]] = {}
    for axis in figure.axes:
        handles, labels = axis.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            variant = next((v for v in variants if label == v or label.startswith(f"{v} (")), None)
            if variant is None:
                continue
            if isinstance(handle, ErrorbarContainer):
                color = handle.lines[0].get_color()
            elif isinstance(handle, BarContainer):
                color = handle.patches[0].get_facecolor()
            elif hasattr(handle, "get_color") and not hasattr(handle, "get_offsets"):
                color = handle.get_color()
            else:  # a scatter
                color = handle.get_facecolor()[0]
            found.setdefault(variant, set()).add(to_hex(color))
    return found


def test_no_axis_uses_a_log_scale_and_concurrency_ticks_are_the_levels(figures: dict[str, Figure]) -> None:
    assert list(figures)[:4] == ["glance", "throughput", "latency_percentiles", "startup"]
    assert {"stages", "latency_cdf_open_loop", "queueing_model"} <= set(figures)
    for name, figure in figures.items():
        for axis in figure.axes:
            assert (axis.get_xscale(), axis.get_yscale()) == ("linear", "linear"), name
            minor = [t.get_text() for t in axis.get_xminorticklabels() + axis.get_yminorticklabels()]
            assert not any(minor), name
    throughput = figures["throughput"].axes[0]
    assert [t.get_text() for t in throughput.get_xticklabels()] == ["1", "2"]
    assert list(throughput.get_xticks()) == [0, 1]  # evenly spaced categories
    glance = figures["glance"].axes[0]
    assert sorted(text.get_text() for text in glance.texts if text.get_text().startswith("c")) == [
        "c1", "c1", "c2", "c2",
    ]  # fmt: skip


def test_a_variant_has_one_colour_on_every_figure(figures: dict[str, Figure]) -> None:
    variants = ["torch", "onnx"]
    palette = variant_colors(variants)
    seen: dict[str, set[str]] = {}
    for figure in figures.values():
        for variant, colors in _labelled_colors(figure, variants).items():
            seen.setdefault(variant, set()).update(colors)
    assert seen == {variant: {palette[variant]} for variant in variants}
    stages = figures["stages"].axes[0]
    assert {t.get_text(): to_hex(t.get_color()) for t in stages.get_xticklabels()} == palette


def test_hand_built_levels_are_the_ticks_and_seven_variants_get_seven_colours() -> None:
    variants = [f"v{index}" for index in range(8)]
    rps = {variant: {1: [10.0 + index], 8: [20.0 + index], 32: [25.0 + index]} for index, variant in
           enumerate(variants)}  # fmt: skip
    table = make_table(closed(rps), variants, [1, 8, 32])
    figure = throughput_figure(table)
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["1", "8", "32"]
    glance = glance_figure(table)
    lines = {
        line.get_label(): to_hex(line.get_color())
        for line in glance.axes[0].get_lines()
        if line.get_label() in variants
    }
    assert lines == variant_colors(variants) and len(set(lines.values())) == len(variants)
    legend = glance.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == variants[::-1]  # best first
    plt.close(figure)
    plt.close(glance)
