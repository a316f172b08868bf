"""The JPEG_DRAFT measurement on the real predictors and artifacts: the shortcut really triggers on the
upscaled digits, the figures are consistent, and the job runs through the bench's child process into the
report. A few digits and photo rounds keep each test to 1-3 s.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.collectors.accuracy import DEFAULT_MANIFEST
from bench.inprocess.jpeg_digits import upscaled_jpeg
from bench.inprocess.jpeg_draft import run_jpeg_draft
from bench.inprocess.launch import run_inprocess
from bench.inprocess.target import build_serving
from bench.payloads import IMAGES_DIR, load_payload
from bench.records import load_run
from bench.registry import PayloadFormat, load_registry
from bench.report.sections.inprocess import jpeg_draft_section
from bench.report.table import tabulate
from bench.results import RunDir, not_measured, write_json
from serving_core.decode import DecodeLimits, decode_image

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = {
    "MODEL_CHECKPOINT": REPO_ROOT / "model_zoo/default/mobilenet_v3_small_digits.pt",
    "ONNX_MODEL": REPO_ROOT / "build/artifacts/fused.optimized.onnx",
}
# Every registered in-process predictor, once (the registry is the one list of variants; onnx-fast is onnx's
# predictor with other settings, and this measurement sets the draft itself).
PREDICTORS: dict[str, tuple[str, str]] = {}
for _variant in load_registry():
    if _variant.in_process is not None:
        _pair = (_variant.in_process.predictor, _variant.in_process.settings)
        if _pair not in PREDICTORS.values():
            PREDICTORS[_variant.name] = _pair
DIGITS = 4


@pytest.fixture
def artifacts(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = [str(path) for path in ARTIFACTS.values() if not path.is_file()]
    if missing or not DEFAULT_MANIFEST.is_file():
        pytest.skip(f"missing {missing or DEFAULT_MANIFEST}: run `make artifacts images` (make test does)")
    for variable, path in ARTIFACTS.items():
        monkeypatch.setenv(variable, str(path))
    monkeypatch.setenv("THREADS", "1")


def test_upscaled_digit_has_the_requested_shorter_side_and_keeps_its_aspect() -> None:
    png = io.BytesIO()
    Image.new("RGB", (40, 60), (200, 10, 10)).save(png, format="PNG")
    with Image.open(io.BytesIO(upscaled_jpeg(png.getvalue(), 512, 90))) as jpeg:
        assert jpeg.format == "JPEG" and jpeg.size == (512, 768)


def test_draft_takes_the_largest_reduction_when_the_longer_side_is_not_a_multiple_of_it() -> None:
    """1024x1030 with min side 256: 1/4 (256x258), not the 1/2 a rounded-up longer side would force."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((1030, 1024, 3), 128, np.uint8)).save(buffer, format="JPEG")
    drafted = decode_image(buffer.getvalue(), DecodeLimits(50_000_000, 20.0, draft_min_side=256))
    assert drafted.shape == (258, 256, 3)


@pytest.mark.parametrize("variant", sorted(PREDICTORS))
def test_measurement_triggers_the_draft_and_reports_consistent_figures(artifacts: None, variant: str) -> None:
    predictor, serving = build_serving(*PREDICTORS[variant])
    result = run_jpeg_draft(
        predictor, serving, str(DEFAULT_MANIFEST), str(IMAGES_DIR), limit=DIGITS, photo_decodes=2
    )
    digits = result["digits"]
    assert result["draft_min_side"] == predictor.resize_size
    assert digits["images"] == DIGITS and digits["draft_applied"] == DIGITS
    assert digits["short_side_off"] == [1024, 1024]
    assert digits["short_side_on"] == [predictor.resize_size] * 2  # 1024 / 4: the largest reduction
    for key in ("top1_off", "top1_on", "top1_agreement", "max_abs_delta_p"):
        assert 0.0 <= digits[key] <= 1.0, key
    if digits["top1_agreement"] < 1.0:
        assert digits["changed"] and digits["max_abs_delta_p"] > 0.0
    assert digits["decode_ms_off"] > 0.0 and digits["decode_ms_on"] > 0.0
    photos = {photo["file"]: photo for photo in result["photos"]}
    assert set(photos) == {"photo_large.jpg", "photo_medium.jpg", "photo_small.jpg"}
    medium, small = photos["photo_medium.jpg"], photos["photo_small.jpg"]
    assert medium["size_on"][0] < medium["size_off"][0] and min(medium["size_on"]) >= predictor.resize_size
    assert small["size_on"] == small["size_off"]  # shorter side below resize_size: left alone
    for photo in photos.values():
        assert all(photo[f"{stage}_{mode}_ms"] > 0 for stage in ("decode", "total") for mode in ("off", "on"))
        assert photo["total_off_ms"] >= photo["decode_off_ms"]


def test_the_job_runs_in_the_child_process_and_becomes_report_rows(artifacts: None, tmp_path: Path) -> None:
    onnx = next(variant for variant in load_registry() if variant.name == "onnx")
    run_dir = RunDir(tmp_path / "run")
    params = {
        "manifest": str(DEFAULT_MANIFEST),
        "photos_dir": str(IMAGES_DIR),
        "limit": 3,
        "photo_decodes": 1,
    }
    payload = load_payload("photo_small", PayloadFormat.JSON)
    result = run_inprocess("jpeg_draft", onnx, payload, run_dir.analysis_dir("onnx"), None, params)
    assert result["kind"] == "jpeg_draft" and result["runtime"] == "onnxruntime"
    write_json(run_dir.analysis_dir("ext") / "jpeg_draft.json", not_measured("external service"))
    write_json(run_dir.run_file, {"variants": [{"name": "onnx"}, {"name": "ext"}], "profile": {}})

    section = jpeg_draft_section(load_run(run_dir))
    tabulate(section, ["onnx", "ext"], "onnx")
    rows = {row.key: row for row in section}
    digits = result["digits"]
    assert rows["jpeg_draft.top1_on"].cells["onnx"].median == pytest.approx(100 * digits["top1_on"])
    speedup = rows["jpeg_draft.speedup"].cells["onnx"].median
    assert speedup == pytest.approx(digits["decode_ms_off"] / digits["decode_ms_on"])
    assert rows["jpeg_draft.photo_medium.jpg.decode_on_ms"].cells["onnx"].median > 0
    assert "1800x1200 -> 450x300" in rows["jpeg_draft.photo_medium.jpg.decode_on_ms"].label
    assert rows["jpeg_draft.speedup"].cells["ext"].text == "n/a (external service)"
