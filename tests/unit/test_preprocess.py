"""The reference preprocessing, on inputs whose outputs are known."""

import numpy as np
import pytest
import torch

from model_zoo.card import Preprocessing
from model_zoo.preprocess import crop_offsets, preprocess_batch, preprocess_image, resized_shape

IMAGENET = Preprocessing(
    resize_size=256, crop_size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (480, 640, (256, 341)),  # 256 * 640 / 480 = 341.33 -> truncated
        (640, 480, (341, 256)),
        (300, 451, (256, 384)),  # 384.85 truncates to 384, not rounds to 385
        (224, 224, (256, 256)),
        (1080, 1920, (256, 455)),  # 455.11
        (100, 80, (320, 256)),
    ],
)
def test_shorter_side_rule_truncates_like_torchvision(height: int, width: int, expected: tuple) -> None:
    assert resized_shape(height, width, 256) == expected


def test_empty_side_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        resized_shape(0, 10, 256)


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (256, 341, (16, 58)),  # (341 - 224) / 2 = 58.5 -> 58 (half to even)
        (256, 339, (16, 58)),  # 57.5 -> 58 (half to even)
        (256, 256, (16, 16)),
        (225, 224, (0, 0)),  # 0.5 -> 0
        (227, 224, (2, 0)),  # 1.5 -> 2
    ],
)
def test_crop_offsets_round_half_to_even(height: int, width: int, expected: tuple) -> None:
    assert crop_offsets(height, width, 224) == expected


def test_output_shape_and_dtype_for_any_input_size() -> None:
    for height, width in [(480, 640), (100, 80), (224, 224), (31, 500)]:
        image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        tensor = preprocess_image(image, IMAGENET)
        assert tensor.shape == (3, 224, 224)
        assert tensor.dtype == torch.float32


def test_constant_image_normalizes_to_known_values() -> None:
    # Resizing a constant image leaves it constant, so every pixel is (value / 255 - mean) / std.
    image = np.empty((300, 451, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 255, 0, 128
    tensor = preprocess_image(image, IMAGENET)
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    for channel, value in enumerate(expected):
        torch.testing.assert_close(tensor[channel], torch.full((224, 224), value), rtol=0, atol=1e-5)


def test_channel_order_is_preserved() -> None:
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    image[..., 2] = 255  # pure blue
    spec = Preprocessing(resize_size=32, crop_size=32, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    tensor = preprocess_image(image, spec)
    assert float(tensor[0].max()) == 0.0
    assert float(tensor[2].min()) == pytest.approx(1.0)


def test_centre_crop_takes_the_middle() -> None:
    # Without resizing (shorter side already resize_size), the crop must pick the centre columns exactly.
    width = 9
    image = np.repeat(np.arange(width, dtype=np.uint8)[None, :, None], 3, axis=2).repeat(4, axis=0)
    spec = Preprocessing(resize_size=4, crop_size=4, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    tensor = preprocess_image(image, spec)
    # Offset (9 - 4) / 2 = 2.5 -> 2: columns 2..5.
    torch.testing.assert_close(tensor[0, 0] * 255, torch.tensor([2.0, 3.0, 4.0, 5.0]), rtol=0, atol=1e-4)


def test_batch_stacks_images_of_different_sizes() -> None:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(480, 640, 3), (100, 80, 3)]]
    batch = preprocess_batch(images, IMAGENET)
    assert batch.shape == (2, 3, 224, 224)
    torch.testing.assert_close(batch[1], preprocess_image(images[1], IMAGENET))


def test_rejects_images_that_are_not_hwc_rgb() -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        preprocess_image(np.zeros((10, 10), dtype=np.uint8), IMAGENET)
    with pytest.raises(ValueError, match="HxWx3"):
        preprocess_image(np.zeros((10, 10, 4), dtype=np.uint8), IMAGENET)
