"""The floor (decode alone + classifier network alone) and the payloads of the in-process jobs: the job on
the real artifacts, the multiple from the typed records, the report rows, the payload layout, CLI, profiles.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

import bench.compare
from bench.__main__ import build_parser, main
from bench.inprocess.floor import DEFAULT_CLASSIFIER, run_floor
from bench.inprocess.launch import EXTERNAL, run_inprocess, run_payload_jobs
from bench.payloads import describe_payload, inprocess_dir, load_payload
from bench.profiles import get_profile
from bench.records import NotMeasured, load_run
from bench.records.derived import floor_multiples
from bench.records.loader import PayloadRepeat
from bench.records.models import Ceiling, Floor
from bench.registry import load_registry, select_variants
from bench.report import build_table
from bench.report.render import to_markdown
from bench.results import RunDir, read_json

DATA = Path(__file__).resolve().parents[1] / "data"
PAYLOAD_RUN = DATA / "bench_run_payloads"  # a recorded quick run with --payloads photo_small,photo_medium
OLD_RUN = DATA / "bench_run"  # recorded before floors and several payloads
ARTIFACTS_BUILT = pytest.mark.skipif(not DEFAULT_CLASSIFIER.is_file(), reason="run `make artifacts` first")


def _ceiling(p50: float) -> Ceiling:
    return Ceiling(throughput_rps=1000.0 / p50, latency_ms={"p50": p50}, stages_ms={})


def _floor(decode_ms: float, network_ms: float) -> Floor:
    return Floor(iterations=10, decode_ms=decode_ms, network_ms=network_ms)


@pytest.fixture
def recorded(tmp_path: Path) -> RunDir:
    root = tmp_path / "run"
    root.mkdir()
    shutil.copy(PAYLOAD_RUN / "run.json", root / "run.json")
    shutil.copytree(PAYLOAD_RUN / "raw", root / "raw")
    return RunDir(root)


# --- the job, for real --------------------------------------------------------------------------------


@pytest.mark.slow
@ARTIFACTS_BUILT
def test_the_floor_job_times_a_positive_decode_and_network_in_a_pinned_child(tmp_path: Path) -> None:
    (onnx,) = select_variants(load_registry(), ["onnx"])
    payload = load_payload("photo_small", onnx.payload_format)
    params = {"iterations": 5, "warmup": 1, "max_seconds": 5.0}
    result = run_inprocess("floor", onnx, payload, tmp_path, None, params)
    floor = Floor.model_validate(result)
    assert floor.kind == "floor" and floor.iterations == 5
    assert (
        floor.decode_ms > 0 and floor.network_ms > 0 and floor.floor_ms == floor.decode_ms + floor.network_ms
    )
    assert floor.decoded_size == [320, 213] and floor.draft_min_side is None  # exact decode, JPEG_DRAFT off
    assert result["network_input"] == [1, 3, 224, 224] and result["network_threads"] == 1
    assert (tmp_path / "floor.json").is_file()


@pytest.mark.slow
@ARTIFACTS_BUILT
def test_with_jpeg_draft_on_the_floor_decodes_dct_scaled() -> None:
    from bench.inprocess.target import build_serving

    (onnx,) = select_variants(load_registry(), ["onnx"])
    assert onnx.in_process is not None
    predictor, settings = build_serving(onnx.in_process.predictor, onnx.in_process.settings)
    data = load_payload("photo_medium", onnx.payload_format).source.read_bytes()
    exact = run_floor(predictor, settings, data, iterations=3, warmup=1, max_seconds=5.0)
    draft = run_floor(predictor, settings.model_copy(update={"jpeg_draft": True}), data, 3, 1, 5.0)
    assert exact["decoded_size"] == [1800, 1200]
    assert draft["draft_min_side"] == predictor.resize_size
    assert predictor.resize_size <= min(draft["decoded_size"]) < 1200
    assert draft["decode_ms"] > 0 and draft["network_ms"] > 0


# --- the multiple, from the records -------------------------------------------------------------------


def test_the_multiple_is_the_ceiling_median_over_the_floor_paired_by_repeat() -> None:
    repeats = [
        PayloadRepeat(0, _ceiling(30.0), _floor(5.0, 5.0)),  # 3.0
        PayloadRepeat(1, _ceiling(24.0), _floor(4.0, 4.0)),  # 24 / 8
        PayloadRepeat(2, _ceiling(20.0), None),  # no floor: left out, not paired with another repeat
        PayloadRepeat(3, NotMeasured(reason=EXTERNAL), NotMeasured(reason=EXTERNAL)),
    ]
    assert floor_multiples(repeats) == [3.0, 3.0]
    assert floor_multiples([PayloadRepeat(0, _ceiling(10.0), _floor(0.0, 0.0))]) == []


def test_the_loader_reads_ceiling_and_floor_of_every_payload(recorded: RunDir) -> None:
    run = load_run(recorded)
    assert [p.name for p in run.inprocess_payloads] == ["photo_small", "photo_medium"]
    assert [p.primary for p in run.inprocess_payloads] == [False, True]
    onnx = run.variants["onnx"]
    assert set(onnx.inprocess) == {"photo_small", "photo_medium"}
    for repeats in onnx.inprocess.values():
        assert [r.repeat for r in repeats] == [0, 1]
        assert all(isinstance(r.ceiling, Ceiling) and isinstance(r.floor, Floor) for r in repeats)
    # The primary payload's ceiling is the one the ceiling rows have always read.
    assert [r.ceiling for r in onnx.inprocess["photo_medium"]] == onnx.ceilings


def test_an_old_run_without_payload_files_still_loads_its_primary_ceiling() -> None:
    run = load_run(OLD_RUN)
    assert [(p.name, p.primary) for p in run.inprocess_payloads] == [("photo_medium", True)]
    onnx = run.variants["onnx"]
    assert [r.ceiling for r in onnx.inprocess["photo_medium"]] == onnx.ceilings
    table = build_table(run)
    assert table.row("inprocess.photo_medium.ms").cells["onnx"].median > 0
    assert table.row("inprocess.photo_medium.multiple").cells["onnx"].text == "n/a (not measured)"


# --- the report ---------------------------------------------------------------------------------------


def test_the_report_has_the_floor_and_the_multiple_for_every_payload(recorded: RunDir) -> None:
    run = load_run(recorded)
    table = build_table(run)
    for payload in ("photo_small", "photo_medium"):
        for name, records in run.variants.items():
            repeats = records.inprocess[payload]
            multiple = table.row(f"inprocess.{payload}.multiple").cells[name]
            assert multiple.values == floor_multiples(repeats) and multiple.median > 1.0
            floor = table.row(f"inprocess.{payload}.floor").cells[name]
            assert floor.values == [r.floor.floor_ms for r in repeats if isinstance(r.floor, Floor)]
        ms = table.row(f"inprocess.{payload}.ms")
        assert ms.better == "lower" and math.isfinite(ms.cells["onnx"].ratio)  # x ratio to the baseline
    text = to_markdown(table)  # as a reader sees it
    assert "in-process ceiling vs its floor, per payload: floor = decode_image of the payload alone" in text
    assert "| photo_small (320x213): multiple of the floor" in text
    assert "| photo_medium (1800x1200, HTTP payload): floor: decode alone + network alone" in text


def test_an_external_variant_has_no_floor_and_says_why(tmp_path: Path) -> None:
    extra = tmp_path / "ext.toml"
    extra.write_text('[[variant]]\nname = "ext"\nurl = "http://127.0.0.1:9"\n')
    (ext,) = load_registry([extra], include_builtin=False)
    run_dir = RunDir(tmp_path / "run")
    run_payload_jobs(ext, ["photo_small", "photo_medium"], "photo_medium", run_dir, 0, None)
    for payload, primary in (("photo_small", False), ("photo_medium", True)):
        folder = inprocess_dir(run_dir, "ext", 0, payload, primary)
        for kind in ("ceiling", "floor"):
            assert read_json(folder / f"{kind}.json") == {"status": "n/a", "reason": EXTERNAL}
    assert inprocess_dir(run_dir, "ext", 0, "photo_medium", True) == run_dir.ceiling_dir("ext", 0)


def test_describe_payload_records_size_and_the_primary_flag() -> None:
    small = describe_payload("photo_small", "photo_medium")
    assert (small["name"], small["width"], small["height"], small["primary"]) == (
        "photo_small",
        320,
        213,
        False,
    )
    assert describe_payload("photo_medium", "photo_medium")["primary"]


# --- profiles and the CLI -----------------------------------------------------------------------------


def test_the_full_profile_measures_three_photos_and_quick_the_medium_one() -> None:
    full, quick = get_profile("full"), get_profile("quick")
    assert full.inprocess_payloads == ("photo_small", "photo_medium", "photo_large")
    assert full.payload == quick.payload == "photo_medium"  # the HTTP levels stay on the primary payload
    assert quick.inprocess_payloads == ("photo_medium",)
    assert quick.with_overrides(payload="photo_small").inprocess_payloads == ("photo_small",)
    assert quick.with_overrides(payloads=("photo_large",)).inprocess_payloads == (
        "photo_medium",
        "photo_large",
    )


def test_the_payloads_option_selects_the_inprocess_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr(bench.compare, "run_compare", lambda options: seen.append(options.profile))
    assert main(["compare", "--payloads", "photo_small, photo_medium"]) == 0
    assert seen[0].inprocess_payloads == ("photo_small", "photo_medium") and seen[0].payload == "photo_medium"
    assert build_parser().parse_args(["compare"]).payloads is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["compare", "--payloads", " , "])
