"""onnx-fast, the fast approximate ONNX strategy, and the approximation gates that hold it to onnx.

The gates are computed from real predictions of the real fused graph (build/artifacts/fused.optimized.onnx,
`make artifacts`) on a small subset of the held-out digits rendered as photo-sized JPEGs, spread evenly over
the manifest so it is deterministic; a failing case is made of real predictions too (the approximation fed a
deliberately wrong image size). The report test renders the recorded gates of a real compare run
(``tests/data/bench_run/raw/onnx-fast/analysis/approximation.json``, from ``--variants onnx,onnx-fast
--profile quick``) beside the recorded two-variant run the regression test uses: onnx-fast joins that run's
run.json only in this test's copy, so the regression test's expected outputs are unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.analysis.approximation import (
    ACCURACY_RATIO_MIN,
    AGREEMENT_MIN,
    GATES_FILE,
    ApproximationGates,
    GateName,
    PathResult,
    Rendering,
    gate_record,
)
from bench.collectors.accuracy import DEFAULT_MANIFEST
from bench.inprocess.approximation import approximating, run_approximation_gates
from bench.inprocess.jpeg_digits import (
    LabelledJpeg,
    labelled_jpegs,
    read_jpeg_set,
    spread_subset,
    write_jpeg_set,
)
from bench.inprocess.predictions import Predictions, predict_each
from bench.inprocess.target import load_object
from bench.payloads import load_payload
from bench.records import load_run
from bench.registry import RegistryError, Variant, load_registry, load_variants_file
from bench.report.aggregate import build_table
from bench.report.flags import FlagCode, Severity
from bench.report.render import to_json, to_markdown
from bench.report.table import Table
from bench.results import RunDir, read_json, write_json
from serving_core.decode import decode_image
from serving_core.predictor import Predictor
from serving_core.request_path import decode_limits
from serving_core.settings import ServingSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = REPO_ROOT / "build" / "artifacts" / "fused.optimized.onnx"
FIXTURE = REPO_ROOT / "tests" / "data" / "bench_run"
RECORDED_GATES = FIXTURE / "raw" / "onnx-fast" / "analysis" / GATES_FILE
SUBSET = 6  # digits spread over the manifest: about 1 s of real predictions on one core
SHORT_SIDE, QUALITY = 1024, 90
WRONG_STRIDE = 64  # the failing case: every 64th pixel of a 1024 px decode, a 16 px image


def registered() -> dict[str, Variant]:
    return {variant.name: variant for variant in load_registry()}


# --- the registry entry ----------------------------------------------------------------------------


def test_onnx_fast_is_onnx_with_jpeg_draft_on_and_approximates_it() -> None:
    variants = registered()
    fast, onnx = variants["onnx-fast"], variants["onnx"]
    assert fast.approximates == "onnx" and fast in approximating(list(variants.values()))
    assert (fast.port, fast.compose_service, fast.compose_port_env) == (
        8004,
        "onnx-fast-serving",
        "ONNX_FAST_PORT",
    )
    assert fast.image is None  # no second image: compose runs onnx's (test_registry_consistency.py)
    assert fast.in_process == onnx.in_process and fast.artifacts == onnx.artifacts
    assert fast.requirements == onnx.requirements and fast.payload_format == onnx.payload_format
    assert fast.local is not None and onnx.local is not None
    assert fast.local.command == onnx.local.command and fast.local.cold_env == onnx.local.cold_env
    # Its launch is onnx's plus its name and the draft: a setting added to onnx's env belongs here too.
    assert fast.local.env == {**onnx.local.env, "VARIANT": "onnx-fast", "JPEG_DRAFT": "true"}, (
        "bench/variants.toml: onnx-fast's env must be onnx's plus VARIANT and JPEG_DRAFT"
    )
    assert fast.tests.artifact_env == onnx.tests.artifact_env and fast.tests.workers == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('approximates = "nothing-registered"\n', "not registered"),
        ('approximates = "approx"\n', "names another variant"),
        ('approximates = "torch"\n[variant.local]\ncommand = ["x"]\n', "needs `\\[variant.in_process\\]`"),
    ],
)
def test_the_registry_refuses_an_approximation_it_cannot_gate(
    tmp_path: Path, entry: str, message: str
) -> None:
    in_process = '[variant.in_process]\npredictor = "a:B"\nsettings = "a:C"\n'
    body = f'[[variant]]\nname = "approx"\nport = 9100\ncompose_service = "x"\n{entry}'
    path = tmp_path / "approx.toml"
    path.write_text(body if "[variant.local]" in entry else body + in_process)
    with pytest.raises(RegistryError, match=message):
        load_registry([path])
    if "not registered" not in message:
        with pytest.raises(RegistryError, match=message):
            load_variants_file(path)


# --- the images ------------------------------------------------------------------------------------


def test_the_subset_is_spread_evenly_and_deterministic() -> None:
    assert spread_subset(list(range(360)), 4) == [0, 90, 180, 270]
    assert spread_subset(list(range(5)), None) == spread_subset(list(range(5)), 9) == [0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def jpegs() -> list[LabelledJpeg]:
    if not DEFAULT_MANIFEST.is_file():
        pytest.skip(f"{DEFAULT_MANIFEST} missing: run `make images`")
    return labelled_jpegs(DEFAULT_MANIFEST, SHORT_SIDE, QUALITY, SUBSET)


def test_the_rendered_set_is_read_back_byte_for_byte(jpegs: list[LabelledJpeg], tmp_path: Path) -> None:
    assert [jpeg.data[:2] for jpeg in jpegs] == [b"\xff\xd8"] * SUBSET  # JPEGs
    assert read_jpeg_set(write_jpeg_set(jpegs, tmp_path / "set")) == jpegs


# --- the gates from real predictions ---------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_serving() -> tuple[Predictor, ServingSettings]:
    """onnx's own predictor and settings classes (from the registry) on the real fused graph."""
    if not ARTIFACT.is_file():
        pytest.skip(f"{ARTIFACT} missing: run `make artifacts`")
    in_process = registered()["onnx"].in_process
    assert in_process is not None
    settings = load_object(in_process.settings)(onnx_model=ARTIFACT, threads=1, inter_op_threads=1)
    predictor = load_object(in_process.predictor)(settings)
    predictor.load()
    return predictor, settings


def path_predictions(
    serving: tuple[Predictor, ServingSettings], jpegs: list[LabelledJpeg], jpeg_draft: bool
) -> Predictions:
    predictor, settings = serving
    limits = decode_limits(settings.model_copy(update={"jpeg_draft": jpeg_draft}), predictor)
    return predict_each(predictor, limits, jpegs)


def record_of(exact: Predictions, approximate: Predictions, draft: bool = True) -> ApproximationGates:
    images = len(exact.labels)
    rendering = Rendering(
        manifest=str(DEFAULT_MANIFEST), short_side=SHORT_SIDE, quality=QUALITY, images=images, of=360
    )
    return gate_record(
        "onnx-fast",
        PathResult(variant="onnx", jpeg_draft=False, total_ms_p50=float(np.median(exact.total_ms))),
        PathResult(variant="onnx-fast", jpeg_draft=draft, draft_min_side=256),
        rendering,
        exact.files,
        exact.labels,
        exact.matrix,
        approximate.matrix,
    )


def test_the_gates_come_from_real_predictions_of_both_paths(
    onnx_serving: tuple[Predictor, ServingSettings], jpegs: list[LabelledJpeg]
) -> None:
    exact = path_predictions(onnx_serving, jpegs, jpeg_draft=False)
    fast = path_predictions(onnx_serving, jpegs, jpeg_draft=True)
    assert exact.short_sides == [SHORT_SIDE] * SUBSET and fast.short_sides == [256] * SUBSET  # draft taken
    record = record_of(exact, fast)
    truth = np.asarray(exact.labels)
    top_exact, top_fast = exact.matrix.argmax(axis=1), fast.matrix.argmax(axis=1)
    assert record.top1_exact == pytest.approx(np.mean(top_exact == truth))
    assert record.top1_approximate == pytest.approx(np.mean(top_fast == truth))
    assert record.agreement == pytest.approx(np.mean(top_exact == top_fast))
    assert 0.0 < record.max_abs_delta_p < 1.0  # the draft changes the pixels, so the probabilities move
    accuracy, agreement = record.gate(GateName.ACCURACY), record.gate(GateName.AGREEMENT)
    assert (accuracy.threshold, agreement.threshold) == (ACCURACY_RATIO_MIN, AGREEMENT_MIN) == (0.99, 0.99)
    assert accuracy.passed is (accuracy.value >= 0.99) and agreement.passed is (agreement.value >= 0.99)
    assert record.passed is (accuracy.passed and agreement.passed)
    assert len(record.changed) == round((1 - record.agreement) * SUBSET)


@pytest.fixture(scope="module")
def failing_record(
    onnx_serving: tuple[Predictor, ServingSettings], jpegs: list[LabelledJpeg]
) -> ApproximationGates:
    """The exact path against an 'approximation' fed a deliberately wrong image size: real predictions."""
    predictor, settings = onnx_serving
    exact = path_predictions(onnx_serving, jpegs, jpeg_draft=False)
    limits = decode_limits(settings, predictor)
    wrong = Predictions(files=exact.files, labels=exact.labels)
    for jpeg in jpegs:
        tiny = np.ascontiguousarray(decode_image(jpeg.data, limits)[::WRONG_STRIDE, ::WRONG_STRIDE])
        wrong.probabilities.append(np.asarray(predictor.predict([tiny]).probabilities[0]))
    return record_of(exact, wrong, draft=False)


def test_the_gates_fail_when_the_approximation_disagrees(failing_record: ApproximationGates) -> None:
    agreement = failing_record.gate(GateName.AGREEMENT)
    assert agreement.value < AGREEMENT_MIN and agreement.passed is False
    assert failing_record.passed is False and failing_record.changed


# --- the report --------------------------------------------------------------------------------------


def recorded_run(tmp_path: Path, gates: dict[str, object]) -> RunDir:
    """The regression test's recorded run with onnx-fast added: its registry entry and its gates file."""
    root = tmp_path / "run"
    root.mkdir()
    shutil.copytree(FIXTURE / "raw", root / "raw")
    run = json.loads((FIXTURE / "run.json").read_text())
    onnx = next(entry for entry in run["variants"] if entry["name"] == "onnx")
    run["variants"].append({**onnx, "name": "onnx-fast", "approximates": "onnx"})
    write_json(root / "run.json", run)
    write_json(root / "raw" / "onnx-fast" / "analysis" / GATES_FILE, gates)
    return RunDir(root)


def rendered(run_dir: RunDir) -> tuple[Table, str]:
    """The report's table and its Markdown (what ``render_report`` writes, without the plots)."""
    table = build_table(run_dir)
    return table, to_markdown(table)


def test_the_report_renders_the_recorded_gates(tmp_path: Path) -> None:
    recorded = ApproximationGates.model_validate(read_json(RECORDED_GATES))
    run_dir = recorded_run(tmp_path, read_json(RECORDED_GATES))
    table, markdown = rendered(run_dir)
    images = recorded.rendering.images
    section = f"| **Approximation gates: onnx-fast vs onnx, in process: {images} held-out digits upscaled"
    assert section + " (LANCZOS) to a 1024 px shorter side, JPEG quality 90" in markdown
    agreement = table.row("approximation.gate.agreement")
    assert agreement.cells["onnx-fast"].median == pytest.approx(100 * recorded.agreement)
    assert agreement.cells["onnx"].text == "n/a (the exact reference of onnx-fast)"
    assert agreement.cells["torch"].text == "n/a (approximates no variant)"
    assert table.row("approximation.verdict").cells["onnx-fast"].text == "PASSED (both gates)"
    assert "onnx: JPEG_DRAFT off" in markdown and "onnx-fast: JPEG_DRAFT on (>= 256 px)" in markdown
    assert any("never take the JPEG path" in note for note in table.notes)
    assert all(flag.code is not FlagCode.APPROXIMATION_GATE for flag in table.flags)
    rows = {row["key"]: row for row in to_json(table)["rows"]}
    assert rows["approximation.gate.accuracy"]["cells"]["onnx-fast"]["flag"] == "passed"


def test_a_failed_gate_reads_failed_in_its_cell_and_under_flags(
    failing_record: ApproximationGates, tmp_path: Path
) -> None:
    run_dir = recorded_run(tmp_path, failing_record.model_dump(mode="json"))
    assert isinstance(load_run(run_dir).variants["onnx-fast"].approximation, ApproximationGates)
    table, markdown = rendered(run_dir)
    failed = [flag for flag in table.flags if flag.code is FlagCode.APPROXIMATION_GATE]
    assert failed and all(flag.severity is Severity.ERROR and flag.variant == "onnx-fast" for flag in failed)
    assert any(flag.message.startswith("FAILED gate 2: top-1 agreement with onnx") for flag in failed)
    assert "(FAILED gate 2: top-1 agreement with onnx" in markdown  # in the cell
    assert "\nFlags:\n" in markdown and f"- {failed[0]}" in markdown  # and under Flags
    assert table.row("approximation.verdict").cells["onnx-fast"].text.startswith("FAILED (")


# --- the compare step, through the bench's child processes -------------------------------------------


@pytest.mark.slow
def test_the_compare_step_gates_onnx_fast_against_onnx_on_every_digit(tmp_path: Path) -> None:
    """What every compare run does: the 360 digits rendered once, each path predicts them in a child process
    with its own registry env (so the draft is on only for onnx-fast), and onnx-fast passes both gates."""
    if not ARTIFACT.is_file() or not DEFAULT_MANIFEST.is_file():
        pytest.skip("run `make artifacts images` first")
    variants = load_registry()
    fast = next(variant for variant in variants if variant.name == "onnx-fast")
    payload = load_payload("photo_small", fast.payload_format)
    run_dir = RunDir(tmp_path / "run")
    record = run_approximation_gates(fast, variants, payload, run_dir, None)
    assert isinstance(record, ApproximationGates)
    assert record == ApproximationGates.model_validate(
        read_json(run_dir.analysis_dir("onnx-fast") / GATES_FILE)
    )
    assert record.exact_path.jpeg_draft is False and record.exact_path.draft_min_side is None
    assert record.approximate_path.jpeg_draft is True and record.approximate_path.draft_min_side == 256
    assert record.rendering.images == record.rendering.of == 360
    assert record.passed, record.gates
