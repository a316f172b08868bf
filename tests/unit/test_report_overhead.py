"""The framework-overhead table: each variant that ``hosts`` another, against it, from the table's medians."""

from __future__ import annotations

import math
from typing import Any

from bench.report.overhead import framework_overheads, header, overhead_json
from bench.report.render import overhead_markdown
from bench.report.table import Cell, Row, Table, tabulate

VARIANTS = ["onnx", "ray-serve", "bentoml", "rust"]


def _table(figures: dict[str, dict[str, list[float]]], hosts: dict[str, str], levels: list[int]) -> Table:
    rows = [
        Row(key.split(".")[0], key, key, "", "higher", {v: Cell(values=cells.get(v, [])) for v in VARIANTS})
        for key, cells in figures.items()
    ]
    run: dict[str, Any] = {
        "started_unix": 1_790_000_000,
        "profile": {"name": "frameworks", "concurrency_levels": levels, "slo_ms": 100.0, "payload": "photo"},
        "pinning": {"service_cores": [1]},
        "runner": {"runner": "local"},
        "sysinfo": {
            "cpu_model": "test CPU",
            "logical_cores": 2,
            "cgroup": {"cpu.max": "max"},
            "load_average_1m_at_start": 0.1,
            "git": {"commit": "0" * 40},
            "python": "3.11",
            "libraries": {},
        },
        "baseline": VARIANTS[0],
        "variants": [{"name": name, "hosts": hosts.get(name)} for name in VARIANTS],
    }
    return Table(VARIANTS, VARIANTS[0], rows, [], run, [], tabulate(rows, VARIANTS, VARIANTS[0]))


FIGURES = {
    "c1.p50": {"onnx": [60.0, 62.0, 64.0], "ray-serve": [128.0, 130.0], "bentoml": [70.0], "rust": [50.0]},
    "c8.rps": {"onnx": [15.0, 16.0], "ray-serve": [7.0, 7.0], "bentoml": [16.0, 17.0], "rust": [20.0]},
    "c8.rss_peak_mb": {"onnx": [257.0], "ray-serve": [1554.0], "bentoml": [428.0], "rust": [90.0]},
    "startup.ready_s": {"onnx": [2.0], "ray-serve": [35.0], "bentoml": [8.9], "rust": [0.5]},
}


def test_each_hosting_variant_is_compared_with_the_variant_it_hosts() -> None:
    table = _table(FIGURES, {"ray-serve": "onnx", "bentoml": "onnx"}, [1, 8])
    overheads = {overhead.variant: overhead for overhead in framework_overheads(table)}
    assert list(overheads) == ["ray-serve", "bentoml"]  # rust hosts nothing
    ray = overheads["ray-serve"]
    assert ray.hosted == "onnx" and ray.users == 8
    assert math.isclose(ray.c1_delta_ms, 129.0 - 62.0)
    assert math.isclose(ray.throughput_ratio, 7.0 / 15.5)
    assert (ray.rss_mb, ray.hosted_rss_mb, ray.ready_s, ray.hosted_ready_s) == (1554.0, 257.0, 35.0, 2.0)
    bento = overheads["bentoml"]
    assert math.isclose(bento.throughput_ratio, 16.5 / 15.5) and math.isclose(bento.c1_delta_ms, 8.0)
    assert header(list(overheads.values()))[3] == "c8 throughput, ratio"
    assert ray.cells()[2].startswith("+67.0 ms") and ray.cells()[3].startswith("x0.45")


def test_the_table_appears_only_when_a_hosted_variant_ran_too() -> None:
    assert framework_overheads(_table(FIGURES, {}, [1, 8])) == []
    without_onnx = {key: {v: c for v, c in cells.items() if v != "onnx"} for key, cells in FIGURES.items()}
    table = _table(without_onnx, {"ray-serve": "onnx"}, [1, 8])
    (ray,) = framework_overheads(table)
    assert math.isnan(ray.throughput_ratio) and ray.cells()[3].startswith("n/a")
    assert overhead_json([ray])[0]["throughput_ratio"] is None
    assert overhead_markdown([]) == []


def test_the_markdown_section_has_one_row_per_framework() -> None:
    table = _table(FIGURES, {"ray-serve": "onnx", "bentoml": "onnx"}, [1, 8])
    lines = overhead_markdown(framework_overheads(table))
    assert lines[0] == "## Framework overhead"
    assert [
        line.split("|")[1].strip() for line in lines if line.startswith("| ray") or line.startswith("| bento")
    ] == [
        "ray-serve",
        "bentoml",
    ]


def test_the_html_page_holds_the_overhead_table_after_the_verdict() -> None:
    from bench.report.html import to_html

    page = to_html(_table(FIGURES, {"ray-serve": "onnx", "bentoml": "onnx"}, [1, 8]), [])
    assert page.index('id="verdict"') < page.index('id="overhead"') < page.index('id="detail"')
    assert "x0.45" in page and "ray-serve" in page
    assert 'id="overhead"' not in to_html(_table(FIGURES, {}, [1, 8]), [])


def test_each_frameworks_verdict_line_states_its_overhead() -> None:
    from bench.report.verdict import build_verdict

    table = _table(FIGURES, {"ray-serve": "onnx", "bentoml": "onnx"}, [1, 8])
    lines = {row.variant: row.time_goes for row in build_verdict(table).rows}
    assert (
        "the framework over onnx: +67.0 ms (c1 p50), x0.45 (c8 req/s), RSS 1554 vs 257 MB"
        in lines["ray-serve"]
    )
    assert "the framework over onnx" in lines["bentoml"]
    assert "the framework" not in lines["onnx"] and "the framework" not in lines["rust"]
