"""Offline optimization keeps the outputs; quantization yields integer ops; the int8 gate decides."""

from __future__ import annotations

import platform

import numpy as np
import onnx
import pytest

from artifact_contract import IMAGE_INPUT, NCHWC_DOMAIN
from artifact_contract.session import open_session
from onnx_graph_transform.fuse import fuse_preprocessing
from onnx_graph_transform.graph_info import node_counts
from onnx_graph_transform.optimize import optimize_offline
from onnx_graph_transform.quantize import INTEGER_OPS, quantize_classifier
from onnx_graph_transform.validate import LabelledImages, int8_verdict, run_artifact, validate_int8

from .conftest import SMALL_SPEC, random_images, session

X86_64 = ("x86_64", "amd64")


@pytest.fixture(scope="module")
def fused_path(tmp_path_factory, tiny_resnet_onnx):
    path = tmp_path_factory.mktemp("fused") / "fused.onnx"
    onnx.save(fuse_preprocessing(tiny_resnet_onnx, SMALL_SPEC), path)
    return path


@pytest.fixture(scope="module")
def int8_path(tmp_path_factory, tiny_resnet_onnx):
    directory = tmp_path_factory.mktemp("int8")
    onnx.save(tiny_resnet_onnx, directory / "classifier.onnx")
    quantize_classifier(directory / "classifier.onnx", directory / "classifier.int8.onnx")
    onnx.save(
        fuse_preprocessing(onnx.load(directory / "classifier.int8.onnx"), SMALL_SPEC),
        directory / "fused.onnx",
    )
    optimize_offline(directory / "fused.onnx", directory / "fused.optimized.int8.onnx")
    return directory / "fused.optimized.int8.onnx"


@pytest.mark.parametrize("level", ["basic", "extended", "all"])
def test_optimized_graph_gives_the_same_probabilities(tmp_path, fused_path, level) -> None:
    report = optimize_offline(fused_path, tmp_path / "optimized.onnx", level)
    assert report["level"] == level
    assert report["nodes_before"] == len(onnx.load(fused_path).graph.node)
    assert report["bytes_after"] == (tmp_path / "optimized.onnx").stat().st_size
    original, optimized = session(fused_path), open_session(tmp_path / "optimized.onnx")
    for images in (random_images(1, 48, 64), random_images(2, 33, 70)):
        np.testing.assert_allclose(
            optimized.run(None, {IMAGE_INPUT: images})[0],
            original.run(None, {IMAGE_INPUT: images})[0],
            atol=1e-6,
        )


def test_extended_level_writes_no_hardware_specific_layout(tmp_path, fused_path) -> None:
    report = optimize_offline(fused_path, tmp_path / "optimized.onnx", "extended")
    after = report["node_counts_after"]
    assert not any("nchwc" in op for op in after)
    assert report["hardware_specific"] is False and report["nchwc_nodes"] == 0
    # ORT imports every domain it knows when saving; the unused ones (nchwc among them) are pruned.
    imported = {entry.domain for entry in onnx.load(tmp_path / "optimized.onnx").opset_import}
    assert imported == {"", "com.microsoft"}
    # Conv + Relu pairs become FusedConv, so the graph shrinks (basic alone may add a node).
    assert after.get("com.microsoft.FusedConv", 0) >= 1
    assert report["nodes_after"] < report["nodes_before"]


@pytest.mark.skipif(platform.machine().lower() not in X86_64, reason="ORT's NCHWc layout is x86-only")
def test_all_level_writes_the_cpu_specific_nchwc_layout(tmp_path, fused_path) -> None:
    report = optimize_offline(fused_path, tmp_path / "optimized.onnx", "all")
    saved = onnx.load(tmp_path / "optimized.onnx")
    nchwc = [node for node in saved.graph.node if node.domain == NCHWC_DOMAIN]
    assert {node.op_type for node in nchwc} >= {"Conv", "ReorderOutput"}
    assert report["nchwc_nodes"] == len(nchwc)
    assert report["hardware_specific"] is True
    assert NCHWC_DOMAIN in {entry.domain for entry in saved.opset_import}


def test_quantized_artifact_uses_integer_operators_and_keeps_float_preprocessing(int8_path) -> None:
    counts = node_counts(onnx.load(int8_path))
    assert any(op in counts for op in ("ConvInteger", "MatMulInteger")), counts
    assert set(counts) & set(INTEGER_OPS)
    assert counts.get("Softmax") == 1
    # The classifier is quantized before fusing: the preprocessing's filter MatMuls stay float.
    preprocessing = [node for node in onnx.load(int8_path).graph.node if node.name.startswith("preprocess/")]
    assert preprocessing and {node.op_type for node in preprocessing}.isdisjoint(INTEGER_OPS)
    assert sum(node.op_type == "MatMul" for node in preprocessing) == 2


def test_quantized_artifact_runs_close_to_fp32(int8_path, fused_path) -> None:
    images = random_images(2, 45, 60)
    int8 = open_session(int8_path).run(None, {IMAGE_INPUT: images})[0]
    fp32 = session(fused_path).run(None, {IMAGE_INPUT: images})[0]
    assert int8.shape == fp32.shape
    np.testing.assert_allclose(int8.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(int8 - fp32).max() < 0.5  # quantization noise, not garbage


def test_int8_verdict_applies_the_99_percent_rule() -> None:
    assert int8_verdict(0.99, 1.0)["status"] == "accepted"
    assert int8_verdict(0.985, 1.0)["status"] == "rejected"
    assert int8_verdict(0.90, 0.95)["required_accuracy"] == pytest.approx(0.9405)


def test_int8_gate_rejects_when_the_threshold_cannot_be_met(int8_path, fused_path) -> None:
    images = [random_images(1, 40 + i, 50, seed=i)[0] for i in range(6)]
    fp32_session = open_session(fused_path)
    labels = run_artifact(fp32_session, images).argmax(axis=1)  # fp32 accuracy is 100% by construction
    heldout = LabelledImages(images, labels, "synthetic")
    strict = validate_int8(open_session(int8_path), fp32_session, heldout, ratio=1.5)
    lenient = validate_int8(open_session(int8_path), fp32_session, heldout, ratio=0.0)
    assert strict["heldout_vs_fp32"]["reference_accuracy"] == 1.0
    assert strict["gate"]["status"] == "rejected"
    assert lenient["gate"]["status"] == "accepted"
