"""The targets of bench/targets.toml: the file's schema, pass / missed / not measured on constructed typed
records, the report's targets rows and the Flags a missed target raises, and the recorded run's targets.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.records import RunRecords, VariantRecords, load_run
from bench.records.loader import PayloadRepeat
from bench.records.models import (
    Accuracy,
    Ceiling,
    Floor,
    InProcessPayload,
    LoadLevel,
    LoadWindow,
    ProfileInfo,
    RunInfo,
    VariantEntry,
)
from bench.report import build_table
from bench.report.flags import FlagCode, Severity
from bench.report.sections.inprocess import floor_section
from bench.report.table import Cell, Row, tabulate
from bench.report.targets import TARGETS_FILE, Status, Target, evaluate, load_targets

PAYLOAD_RUN = Path(__file__).resolve().parents[1] / "data" / "bench_run_payloads"  # floors recorded


def _target(**fields: object) -> Target:
    base: dict[str, object] = {"id": "t", "goal": "a goal", "metric": "m", "variant": "b", "op": ">=",
                               "threshold": 1.5}  # fmt: skip
    return Target.model_validate({**base, **fields})


def _frame(values: dict[str, list[float]], better: str | None = "higher", key: str = "m") -> object:
    cells = {name: Cell(values=v) if v else Cell(text="n/a (external service)") for name, v in values.items()}
    row = Row("s", key, "a metric", "u", better, cells, spread_of="repeats")
    return tabulate([row], list(values), next(iter(values)))


# --- the file ------------------------------------------------------------------------------------------


def test_the_targets_file_holds_the_lab_goals() -> None:
    targets = {target.id: target for target in load_targets()}
    assert len(targets) == 7
    assert (
        targets["ceiling_vs_torch"].relation == "times_better"
        and targets["ceiling_vs_torch"].threshold == 1.7
    )
    assert targets["http_c1_vs_torch"].max_spread == pytest.approx(0.10)
    assert targets["fast_ceiling_vs_torch"].variant == "onnx-fast"
    assert targets["accuracy_vs_torch"].op == "=="


def test_a_target_file_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="versus"):
        _target(versus="a")  # a versus needs a relation
    with pytest.raises(ValidationError):
        _target(op="~=")
    twice = tmp_path / "targets.toml"
    entry = '[[target]]\nid = "x"\ngoal = "g"\nmetric = "m"\nvariant = "v"\nop = ">="\nthreshold = 1\n'
    twice.write_text(entry * 2)
    with pytest.raises(ValueError, match="unique"):
        load_targets(twice)


# --- the evaluation ------------------------------------------------------------------------------------


def test_value_targets_pass_and_miss_on_the_median() -> None:
    frame = _frame({"a": [1.0], "b": [1.4, 1.6, 1.7]})
    passed = evaluate(_target(), frame)
    assert passed.status is Status.PASS and passed.value == 1.6 and "medians of n=3 (repeats)" in passed.basis
    missed = evaluate(_target(op="<=", threshold=1.2), frame)
    assert missed.status is Status.MISSED and missed.value == 1.6 and "not <= 1.2" in missed.reason


def test_times_better_follows_the_rows_sense() -> None:
    higher = _frame({"a": [10.0], "b": [20.0]}, better="higher")
    assert evaluate(_target(versus="a", relation="times_better"), higher).value == 2.0
    lower = _frame({"a": [30.0], "b": [10.0]}, better="lower")  # ms: 3x faster
    outcome = evaluate(_target(versus="a", relation="times_better", threshold=3.0), lower)
    assert outcome.status is Status.PASS and outcome.value == 3.0
    neutral = _frame({"a": [1.0], "b": [2.0]}, better=None)
    assert evaluate(_target(versus="a", relation="times_better"), neutral).status is Status.NOT_MEASURED


def test_difference_and_equality_with_a_tolerance() -> None:
    frame = _frame({"a": [97.5], "b": [97.5]})
    same = _target(versus="a", relation="difference", op="==", threshold=0.0)
    assert evaluate(same, frame).status is Status.PASS
    worse = _frame({"a": [97.5], "b": [96.0]})
    assert evaluate(same, worse).status is Status.MISSED and evaluate(same, worse).value == -1.5
    tolerant = _target(versus="a", relation="difference", op="==", threshold=0.0, tolerance=2.0)
    assert evaluate(tolerant, worse).status is Status.PASS


def test_a_wide_repeat_spread_misses_and_one_repeat_is_not_measured() -> None:
    target = _target(versus="a", relation="times_better", max_spread=0.10)
    steady = _frame({"a": [10.0, 10.5], "b": [20.0, 20.4]})
    assert evaluate(target, steady).status is Status.PASS
    noisy = _frame({"a": [10.0, 14.0], "b": [20.0, 20.4]})
    outcome = evaluate(target, noisy)
    assert outcome.status is Status.MISSED and "a repeat spread 33% > 10%" in outcome.reason
    once = _frame({"a": [10.0], "b": [20.0]})
    assert evaluate(target, once).status is Status.NOT_MEASURED


def test_missing_variants_rows_and_figures_are_never_a_pass() -> None:
    frame = _frame({"a": [1.0], "b": []})
    for target, reason in (
        (_target(variant="zz"), "variant zz not in this run"),
        (_target(metric="nope"), "no row nope"),
        (_target(), "b: n/a (external service)"),
        (_target(variant="a", versus="b", relation="times_better"), "b: n/a"),
    ):
        outcome = evaluate(target, frame)
        assert (
            outcome.status is Status.NOT_MEASURED and reason in outcome.reason and math.isnan(outcome.value)
        )


# --- the section, from constructed typed records -------------------------------------------------------


def _level(repeat: int, rps: float) -> LoadLevel:
    window = LoadWindow(duration_s=10.0, successes=int(rps * 10))
    return LoadLevel(repeat=repeat, users=1, window=window, latencies=[10.0])


def _variant(name: str, p50_ms: float, floor_ms: float, rps: list[float], top1: float) -> VariantRecords:
    stages = dict.fromkeys(("decode", "preprocess", "inference", "postprocess"), p50_ms / 4)
    ceiling = Ceiling(
        throughput_rps=1000.0 / p50_ms,
        latency_ms=dict.fromkeys(("p50", "p90", "p99", "min", "max"), p50_ms),
        stages_ms=stages,
    )
    floor = Floor(iterations=10, decode_ms=floor_ms / 2, network_ms=floor_ms / 2)
    return VariantRecords(
        name,
        levels=[_level(repeat, value) for repeat, value in enumerate(rps)],
        ceilings=[ceiling, ceiling],
        accuracy=Accuracy(images=100, correct=int(top1 * 100), top1=top1),
        inprocess={"photo_medium": [PayloadRepeat(0, ceiling, floor), PayloadRepeat(1, ceiling, floor)]},
    )


def _run(variants: list[VariantRecords]) -> RunRecords:
    info = RunInfo(
        profile=ProfileInfo(concurrency_levels=[1], repeats=2),
        baseline="torch",
        variants=[VariantEntry(name=v.name) for v in variants],
        inprocess_payloads=[InProcessPayload(name="photo_medium", width=1800, height=1200, primary=True)],
    )
    return RunRecords(Path(), info, {v.name: v for v in variants}, [], {})


def test_the_targets_rows_judge_the_report_figures_and_flag_a_miss() -> None:
    run = _run([
        _variant("torch", p50_ms=40.0, floor_ms=10.0, rps=[22.0, 22.5], top1=0.95),
        _variant("onnx", p50_ms=20.0, floor_ms=10.0, rps=[46.0, 46.5], top1=0.95),  # 2x torch, 2x its floor
    ])  # fmt: skip
    assert floor_section(run)  # the rows the targets read
    table = build_table(run)
    cells = {row.key: row.cells for row in table.rows if row.key.startswith("target.")}
    assert len(cells) == len(load_targets(TARGETS_FILE))
    ceiling = cells["target.ceiling_vs_torch"]["onnx"]
    assert ceiling.median == 2.0 and ceiling.flag is not None and ceiling.flag.severity is Severity.INFO
    assert cells["target.ceiling_vs_torch"]["torch"].text == "—"
    assert cells["target.http_c1_vs_torch"]["onnx"].median == pytest.approx(46.25 / 22.25)
    assert cells["target.accuracy_vs_torch"]["onnx"].median == 0.0
    assert cells["target.serving_efficiency"]["onnx"].median == pytest.approx(100 * 46.25 / 50)
    fast = cells["target.fast_ceiling_vs_torch"]["torch"]  # onnx-fast has no column: the first one says so
    assert fast.text is not None and fast.text.startswith("not measured (variant onnx-fast not in this run")
    assert cells["target.service_rss"]["onnx"].text is not None  # no resources sampled: not measured
    missed = [flag for flag in table.flags if flag.code is FlagCode.TARGET]
    assert [flag.message.split(" (")[0] for flag in missed] == ["MISSED target ceiling_vs_floor"]
    assert missed[0].severity is Severity.WARNING and missed[0].variant == "onnx"
    assert "2 is not <= 1.5" in missed[0].message


def test_the_recorded_run_shows_the_targets_with_their_basis(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    shutil.copy(PAYLOAD_RUN / "run.json", root / "run.json")
    shutil.copytree(PAYLOAD_RUN / "raw", root / "raw")
    table = build_table(load_run(root))
    rows = [row for row in table.rows if row.key.startswith("target.")]
    assert [row.label for row in rows] == [target.goal for target in load_targets()]
    multiple = table.row("target.ceiling_vs_floor").cells["onnx"]
    assert multiple.median == table.row("inprocess.photo_medium.multiple").cells["onnx"].median
    assert multiple.flag is not None and "basis: inprocess.photo_medium.multiple" in multiple.flag.message
