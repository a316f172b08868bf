"""The parity report's figures, and an fp32 gate that passes on a faithful artifact and fails otherwise."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from PIL import Image

from artifact_contract.session import open_session
from onnx_graph_transform.fuse import fuse_preprocessing
from onnx_graph_transform.validate import LabelledImages, compare, load_heldout, validate_fp32

from .conftest import SMALL_SPEC, random_images, reference


def test_compare_reports_agreement_deltas_and_accuracies() -> None:
    reference_probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    candidate = np.array([[0.8, 0.2], [0.2, 0.8], [0.4, 0.6]])
    result = compare(reference_probabilities, candidate, np.array([0, 1, 1]))
    assert result["images"] == 3
    assert result["disagreements"] == 1
    assert result["top1_agreement"] == pytest.approx(2 / 3)
    assert result["max_abs_delta"] == pytest.approx(0.2)
    assert result["reference_accuracy"] == pytest.approx(2 / 3)
    assert result["candidate_accuracy"] == pytest.approx(1.0)


def test_load_heldout_decodes_the_manifest(tmp_path) -> None:
    images = random_images(2, 12, 9)
    entries = []
    for index, (pixels, label) in enumerate(zip(images, (3, 7), strict=True)):
        Image.fromarray(pixels).save(tmp_path / f"{index:05d}.png")
        entries.append({"file": f"{index:05d}.png", "label": label, "label_name": str(label)})
    Image.fromarray(images[0][..., 0]).convert("L").save(tmp_path / "gray.png")  # greyscale files become RGB
    entries.append({"file": "gray.png", "label": 1, "label_name": "1"})
    (tmp_path / "manifest.json").write_text(json.dumps({"images": entries}))
    heldout = load_heldout(tmp_path)
    assert heldout.labels.tolist() == [3, 7, 1]
    np.testing.assert_array_equal(heldout.images[1], images[1])
    assert heldout.images[2].shape == (12, 9, 3)


@pytest.fixture(scope="module")
def fused_session(tmp_path_factory, tiny_resnet_onnx):
    path = tmp_path_factory.mktemp("validate") / "fused.onnx"
    onnx.save(fuse_preprocessing(tiny_resnet_onnx, SMALL_SPEC), path)
    return open_session(path)


@pytest.fixture(scope="module")
def heldout() -> LabelledImages:
    images = [random_images(1, 30 + 3 * i, 50 - 2 * i, seed=i)[0] for i in range(5)]
    return LabelledImages(images, np.arange(5) % 5, "synthetic")


def test_fp32_gate_passes_on_a_faithful_artifact(fused_session, tiny_resnet, heldout) -> None:
    result = validate_fp32(fused_session, lambda images: reference(tiny_resnet, images), heldout)
    assert result["gate"]["passed"] is True
    assert result["heldout"]["images"] == 5
    assert result["heldout"]["top1_agreement"] == 1.0
    assert result["gate"]["max_abs_delta"] <= 1e-4
    shapes = [case["shape"] for case in result["synthetic"]]
    assert [2, 257, 255, 3] in shapes and [1, 1080, 1920, 3] in shapes


def test_fp32_gate_fails_when_the_pipelines_differ(fused_session, tiny_resnet, heldout) -> None:
    """A reference that disagrees with the artifact (probabilities shifted by one class) fails the gate."""

    def shifted(images):
        probabilities = reference(tiny_resnet, images)
        return np.roll(probabilities, 1, axis=1)

    result = validate_fp32(fused_session, shifted, heldout)
    assert result["gate"]["passed"] is False
    assert result["gate"]["top1_agreement"] < 1.0
