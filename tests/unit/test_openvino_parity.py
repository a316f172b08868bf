"""The real OpenVinoPredictor against the real TorchPredictor on the held-out digits (the set the artifact
build's fp32 gate checks onnx's graphs on), under the same gate: 100% top-1 agreement, max |dp| <= 1e-4.
Then the artifacts it refuses, each with a reason that says what to do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from artifact_contract import CARD_FILE, CLASSIFIER_FILE, MANIFEST_FILE, OPTIMIZED_FILE, PORTABLE_FILE
from onnx_graph_transform.validate import FP32_MAX_ABS_DELTA, FP32_MIN_AGREEMENT, compare, heldout_images
from openvino_serving.predictor import OpenVinoPredictor
from openvino_serving.settings import OpenVinoServingSettings
from serving_core.errors import ModelLoadError
from torch_serving.predictor import TorchPredictor
from torch_serving.settings import TorchServingSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "build" / "artifacts"
DIGITS = REPO_ROOT / "images" / "digits"

pytestmark = pytest.mark.skipif(
    not (ARTIFACTS / MANIFEST_FILE).is_file(), reason="run `make artifacts` first"
)


def openvino_predictor(model: Path) -> OpenVinoPredictor:
    return OpenVinoPredictor(OpenVinoServingSettings(openvino_model=model, threads=1))


@pytest.mark.slow
def test_openvino_agrees_with_torch_on_every_heldout_digit() -> None:
    heldout = heldout_images(DIGITS)
    assert len(heldout.images) >= 100, heldout.source
    reference = TorchPredictor(TorchServingSettings(threads=1))
    reference.load()
    candidate = openvino_predictor(ARTIFACTS / PORTABLE_FILE)
    candidate.load()
    expected = np.concatenate([reference.predict([image]).probabilities for image in heldout.images])
    # One image per call, as /predict sends them: every new size reshapes the compiled model.
    served = np.concatenate([candidate.predict([image]).probabilities for image in heldout.images])
    result = compare(expected, served, heldout.labels)
    print(f"\nopenvino vs torch on {heldout.source}: {result}")
    assert result["top1_agreement"] >= FP32_MIN_AGREEMENT, result
    assert result["max_abs_delta"] <= FP32_MAX_ABS_DELTA, result
    assert result["candidate_accuracy"] == result["reference_accuracy"]


def test_a_mixed_size_batch_comes_back_in_request_order() -> None:
    predictor = openvino_predictor(ARTIFACTS / PORTABLE_FILE)
    predictor.load()
    rng = np.random.default_rng(0)
    sizes = [(120, 90), (64, 200), (120, 90), (300, 300), (64, 200)]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    batched = predictor.predict(images).probabilities
    one_by_one = np.concatenate([predictor.predict([image]).probabilities for image in images])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)


def _rejected_copy(directory: Path) -> Path:
    """The portable graph, its card and a manifest whose entry for it says ``rejected``."""
    for name in (PORTABLE_FILE, CARD_FILE):
        shutil.copy(ARTIFACTS / name, directory / name)
    manifest = json.loads((ARTIFACTS / MANIFEST_FILE).read_text())
    manifest["artifacts"][PORTABLE_FILE]["status"] = "rejected"
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    return directory / PORTABLE_FILE


def _corrupt_copy(directory: Path) -> Path:
    shutil.copy(ARTIFACTS / CARD_FILE, directory / CARD_FILE)
    (directory / PORTABLE_FILE).write_bytes(b"not an onnx model " * 64)
    return directory / PORTABLE_FILE


@pytest.mark.parametrize(
    ("artifact", "reasons"),
    [
        (lambda directory: directory / "absent.onnx", ["absent.onnx not found", "OPENVINO_MODEL"]),
        (_rejected_copy, ["marked 'rejected'", MANIFEST_FILE]),
        (lambda _: ARTIFACTS / OPTIMIZED_FILE, ["OpenVINO cannot read", f".../{PORTABLE_FILE}"]),
        (lambda _: ARTIFACTS / CLASSIFIER_FILE, ["must take one uint8 [N, H, W, 3] input named 'image'"]),
        (_corrupt_copy, ["cannot read fused.portable.onnx as an ONNX model"]),
    ],
    ids=["missing", "rejected", "ort_layout_nodes", "unfused_classifier", "corrupt"],
)
def test_an_artifact_it_must_not_serve_is_refused_with_the_reason(artifact, reasons, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as refused:
        openvino_predictor(artifact(tmp_path)).load()
    message = str(refused.value)
    assert all(reason in message for reason in reasons), message
    assert str(tmp_path) not in message and str(ARTIFACTS) not in message
