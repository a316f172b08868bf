"""What a predictor declares about its runtime, and the bench reading it instead of the runtime's name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from artifact_contract import OPTIMIZED_FILE
from bench.inprocess.profiler import TOP_OPERATORS, profile_predictor
from bench.results import is_not_measured
from onnx_serving.predictor import OnnxPredictor
from onnx_serving.settings import OnnxServingSettings
from serving_core.predictor import Predictor
from torch_serving.predictor import TorchPredictor
from torch_serving.settings import TorchServingSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
ONNX_MODEL = REPO_ROOT / "build" / "artifacts" / OPTIMIZED_FILE
CHECKPOINT = REPO_ROOT / "model_zoo" / "default" / "mobilenet_v3_small_digits.pt"


def test_capabilities_are_declared_per_runtime() -> None:
    assert Predictor.fused_preprocessing is False and Predictor.operator_profiler is None
    assert OnnxPredictor.fused_preprocessing is True and TorchPredictor.fused_preprocessing is False
    assert OnnxPredictor.operator_profiler and TorchPredictor.operator_profiler


def test_a_predictor_without_a_profiler_is_not_measured_by_name(tmp_path: Path) -> None:
    class Bare(TorchPredictor):
        runtime = "bare"
        operator_profiler = None

    result = profile_predictor(Bare(TorchServingSettings()), np.zeros((8, 8, 3), np.uint8), 1, tmp_path)
    assert is_not_measured(result) and "no operator profiler for runtime 'bare'" in result["reason"]
    assert not any(tmp_path.iterdir())  # nothing profiled, nothing written


@pytest.mark.parametrize("variant", ["torch", "onnx"])
def test_each_runtime_profiles_its_whole_predict_path(variant: str, tmp_path: Path) -> None:
    if variant == "onnx" and not ONNX_MODEL.is_file():
        pytest.fail(f"{ONNX_MODEL} is missing: run `make artifacts`")
    predictor: Predictor = (
        TorchPredictor(TorchServingSettings(model_checkpoint=CHECKPOINT))
        if variant == "torch"
        else OnnxPredictor(OnnxServingSettings(onnx_model=ONNX_MODEL))
    )
    predictor.load()
    image = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    result = profile_predictor(predictor, image, 2, tmp_path / "profile")
    assert set(result) == {"profiler", "calls", "raw", "top"}
    assert result["profiler"] == predictor.operator_profiler
    # ORT cannot leave its warmup run out of the trace, so its totals cover one more call.
    assert result["calls"] == (3 if variant == "onnx" else 2)
    assert json.loads((tmp_path / "profile" / result["raw"]).read_text())
    top = result["top"]
    assert 0 < len(top) <= TOP_OPERATORS
    assert set(top[0]) == {"operator", "total_ms_per_call", "share", "occurrences_per_call"}
    per_call = [row["total_ms_per_call"] for row in top]
    assert per_call == sorted(per_call, reverse=True)
    assert 0 < sum(row["share"] for row in top) <= 1.0 + 1e-9
