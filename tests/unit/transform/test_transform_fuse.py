"""The fused graph equals model_zoo.preprocess + classifier + softmax for any image size and classifier."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from artifact_contract import IMAGE_INPUT, PROBABILITIES_OUTPUT
from model_zoo.preprocess import preprocess_batch
from onnx_graph_transform.export import export_classifier
from onnx_graph_transform.fuse import (
    PREPROCESS_STRATEGIES,
    UnsupportedClassifierError,
    fuse_preprocessing,
    preprocessing_graph,
)

from .conftest import (
    NUM_CLASSES,
    SMALL_SPEC,
    handwritten_classifier,
    random_images,
    reference,
    seeded_tiny_resnet,
    session,
)

# (batch, height, width): landscape/portrait, odd margins after resize, upsampling, 1x1, large, aspect ratios
# of 20 both ways (one axis upsampled, the other downsampled), prime sides, batches of two and three.
SIZES = [
    (1, 48, 64),
    (1, 30, 45),
    (1, 45, 30),
    (1, 33, 33),
    (1, 1, 1),
    (1, 3, 2),
    (1, 1080, 1920),
    (1, 400, 20),
    (1, 20, 400),
    (1, 997, 1009),
    (2, 41, 39),
    (3, 257, 131),
]
PROBABILITY_TOLERANCE = 1e-5
# Normalized pixels differ by float rounding in the resize weights only (~1e-4, i.e. < 0.01 grey level).
PIXEL_TOLERANCE = 1e-3


@pytest.mark.parametrize("strategy", PREPROCESS_STRATEGIES)
@pytest.mark.parametrize(("batch", "height", "width"), SIZES)
def test_preprocessing_subgraph_matches_reference_pixels(
    batch: int, height: int, width: int, strategy: str
) -> None:
    images = random_images(batch, height, width)
    pixels = session(preprocessing_graph(SMALL_SPEC, opset=18, ir_version=10, strategy=strategy)).run(
        None, {IMAGE_INPUT: images}
    )[0]
    expected = preprocess_batch(list(images), SMALL_SPEC).numpy()
    assert pixels.shape == expected.shape == (batch, 3, SMALL_SPEC.crop_size, SMALL_SPEC.crop_size)
    np.testing.assert_allclose(pixels, expected, rtol=0, atol=PIXEL_TOLERANCE)


@pytest.mark.parametrize(
    ("batch", "height", "width"), [(1, 300, 451), (1, 1200, 1800), (2, 513, 257), (1, 30, 600)]
)
def test_crop_taps_with_the_default_cards_sizes(batch: int, height: int, width: int) -> None:
    """256 -> 224 at photo sizes (scales up to 4.7, windows of ~1050 px) and a 20:1 image, against torch."""
    from model_zoo.card import Preprocessing

    spec = Preprocessing(resize_size=256, crop_size=224, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    images = random_images(batch, height, width)
    pixels = session(preprocessing_graph(spec, opset=18, ir_version=10)).run(None, {IMAGE_INPUT: images})[0]
    # Tighter than the Resize strategy needs: the taps reproduce torch's weights, not just its filter.
    np.testing.assert_allclose(pixels, preprocess_batch(list(images), spec).numpy(), rtol=0, atol=1e-5)


def test_crop_taps_read_only_the_crops_window() -> None:
    """Pixels outside the window the crop's taps reach cannot change the result; pixels inside do."""
    from model_zoo.card import Preprocessing

    spec = Preprocessing(resize_size=256, crop_size=224, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    graph = session(preprocessing_graph(spec, opset=18, ir_version=10))
    images = random_images(1, 1200, 1800)
    baseline = graph.run(None, {IMAGE_INPUT: images})[0]
    # scale 1200/256 = 4.6875: the crop's columns 80..303 of 384 reach source columns ~373..1427.
    outside = images.copy()
    outside[:, :, :360] = 0
    outside[:, :, 1440:] = 255
    np.testing.assert_array_equal(graph.run(None, {IMAGE_INPUT: outside})[0], baseline)
    inside = images.copy()
    inside[:, :, 380] = 0
    assert np.abs(graph.run(None, {IMAGE_INPUT: inside})[0] - baseline).max() > 1e-3


@pytest.mark.parametrize("strategy", PREPROCESS_STRATEGIES)
def test_fused_second_architecture_matches_reference_on_every_size(
    tiny_resnet, tiny_resnet_onnx, strategy: str
) -> None:
    fused = session(fuse_preprocessing(tiny_resnet_onnx, SMALL_SPEC, strategy))
    for batch, height, width in SIZES:
        images = random_images(batch, height, width)
        probabilities = fused.run(None, {IMAGE_INPUT: images})[0]
        expected = reference(tiny_resnet, images)
        assert probabilities.shape == (batch, NUM_CLASSES)
        np.testing.assert_allclose(probabilities, expected, rtol=0, atol=PROBABILITY_TOLERANCE)
        assert (probabilities.argmax(axis=1) == expected.argmax(axis=1)).all()


@pytest.mark.parametrize("strategy", PREPROCESS_STRATEGIES)
def test_height_and_width_are_really_dynamic(tiny_resnet, tiny_resnet_onnx, strategy: str) -> None:
    """Two sizes through one session each give their own reference result, not a fixed-size stretch."""
    fused_model = fuse_preprocessing(tiny_resnet_onnx, SMALL_SPEC, strategy)
    constants = {tensor.name for tensor in fused_model.graph.initializer}
    for node in fused_model.graph.node:
        if node.op_type == "Resize":
            assert node.input[3] not in constants, "Resize sizes must be computed from the input shape"
        if node.op_type == "Gather":
            assert node.input[1] not in constants, "tap indices must be computed from the input shape"
    assert any(
        node.op_type == ("Resize" if strategy == "resize" else "Gather") for node in fused_model.graph.node
    )
    fused = session(fused_model)
    # The same content at two sizes: a stretched-to-constant graph would give identical pixels for both.
    small = random_images(1, 40, 60, seed=3)
    large = np.repeat(np.repeat(small, 2, axis=1), 3, axis=2)  # 80x180: another aspect ratio, another crop
    results = [fused.run(None, {IMAGE_INPUT: images})[0] for images in (small, large)]
    for images, probabilities in zip((small, large), results, strict=True):
        np.testing.assert_allclose(
            probabilities, reference(tiny_resnet, images), rtol=0, atol=PROBABILITY_TOLERANCE
        )
    assert np.abs(results[0] - results[1]).max() > 1e-3


def test_graph_interface_and_single_default_opset(tiny_resnet_onnx) -> None:
    fused = fuse_preprocessing(tiny_resnet_onnx, SMALL_SPEC)
    (image,) = fused.graph.input
    (probabilities,) = fused.graph.output
    assert image.name == IMAGE_INPUT
    assert image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim] == [
        "batch",
        "height",
        "width",
        3,
    ]
    assert probabilities.name == PROBABILITIES_OUTPUT
    default_domains = [entry for entry in fused.opset_import if entry.domain in ("", "ai.onnx")]
    assert len(default_domains) == 1 and default_domains[0].version >= 18
    assert sum(node.op_type == "Softmax" for node in fused.graph.node) == 1


def test_classifier_ending_in_softmax_gets_no_second_softmax(tmp_path) -> None:
    model = seeded_tiny_resnet(softmax=True)
    exported = export_classifier(model, tmp_path / "softmax.onnx", SMALL_SPEC.crop_size)
    fused_model = fuse_preprocessing(exported, SMALL_SPEC)
    assert sum(node.op_type == "Softmax" for node in fused_model.graph.node) == 1
    images = random_images(2, 50, 37)
    with torch.inference_mode():
        expected = model(preprocess_batch(list(images), SMALL_SPEC)).numpy()
    probabilities = session(fused_model).run(None, {IMAGE_INPUT: images})[0]
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=PROBABILITY_TOLERANCE)


def test_foreign_classifier_at_an_older_opset_with_colliding_names() -> None:
    """A graph this repo did not export (hand-written, opset 13, a tensor named ``image``) fuses."""
    classifier, torch_model = handwritten_classifier(opset=13)
    fused_model = fuse_preprocessing(classifier, SMALL_SPEC)
    fused = session(fused_model)
    for batch, height, width in [(1, 48, 64), (2, 31, 29)]:
        images = random_images(batch, height, width)
        probabilities = fused.run(None, {IMAGE_INPUT: images})[0]
        np.testing.assert_allclose(
            probabilities, reference(torch_model, images), rtol=0, atol=PROBABILITY_TOLERANCE
        )


def test_weights_listed_as_graph_inputs_do_not_become_fused_inputs() -> None:
    classifier, torch_model = handwritten_classifier(opset=13)
    classifier.graph.input.extend(
        helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
        for tensor in classifier.graph.initializer
    )
    fused_model = fuse_preprocessing(classifier, SMALL_SPEC)
    assert [value.name for value in fused_model.graph.input] == [IMAGE_INPUT]
    images = random_images(1, 37, 52)
    probabilities = session(fused_model).run(None, {IMAGE_INPUT: images})[0]
    np.testing.assert_allclose(
        probabilities, reference(torch_model, images), rtol=0, atol=PROBABILITY_TOLERANCE
    )


def test_rejects_a_classifier_with_a_fixed_batch() -> None:
    classifier, _ = handwritten_classifier()
    classifier.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    with pytest.raises(UnsupportedClassifierError, match="batch"):
        fuse_preprocessing(classifier, SMALL_SPEC)


def test_rejects_a_classifier_that_is_not_three_channel_nchw() -> None:
    classifier, _ = handwritten_classifier()
    classifier.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1
    with pytest.raises(UnsupportedClassifierError, match="3 channels"):
        fuse_preprocessing(classifier, SMALL_SPEC)


def test_rejects_a_classifier_fixed_at_another_input_size() -> None:
    classifier, _ = handwritten_classifier()
    for dim in classifier.graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.dim_value = 299
    with pytest.raises(UnsupportedClassifierError, match="299"):
        fuse_preprocessing(classifier, SMALL_SPEC)


def test_empty_image_fails_cleanly_instead_of_dividing_by_zero(tiny_resnet_onnx) -> None:
    """A zero side raises an ORT error (services reject such images earlier), never crashes the process."""
    fused = session(fuse_preprocessing(tiny_resnet_onnx, SMALL_SPEC))
    with pytest.raises(Exception, match=r"(?i)invalid|shape"):
        fused.run(None, {IMAGE_INPUT: np.zeros((1, 0, 5, 3), dtype=np.uint8)})


def test_fusion_leaves_the_input_classifier_untouched(tiny_resnet_onnx) -> None:
    before = tiny_resnet_onnx.SerializeToString()
    fuse_preprocessing(tiny_resnet_onnx, SMALL_SPEC)
    assert tiny_resnet_onnx.SerializeToString() == before
