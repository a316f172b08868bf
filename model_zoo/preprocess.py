"""The reference preprocessing every variant must reproduce.

Images arrive decoded as uint8 arrays of shape (H, W, 3), RGB, of any size. The pipeline is the one
torchvision's classification presets use, computed in float so it can serve as a tight parity reference:

1. resize so the shorter side equals ``resize_size`` (the longer side is truncated, as torchvision does),
   bilinear with antialiasing;
2. centre crop to ``crop_size`` (offsets rounded half to even, as Python's ``round`` does);
3. scale to [0, 1] and normalize with the card's mean and std.

The ONNX graph built by ``onnx_graph_transform.fuse`` implements the same steps in ONNX operators, and the
validation step compares the two on every held-out image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from model_zoo.card import Preprocessing


def resized_shape(height: int, width: int, resize_size: int) -> tuple[int, int]:
    """Shape once the shorter side is resized to ``resize_size`` (longer side truncated, as torchvision)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image has an empty side: {height}x{width}")
    if width <= height:
        return int(resize_size * height / width), resize_size
    return resize_size, int(resize_size * width / height)


def crop_offsets(height: int, width: int, crop_size: int) -> tuple[int, int]:
    """Top and left offsets of the centre crop, rounded half to even like torchvision's ``round``."""
    return round((height - crop_size) / 2.0), round((width - crop_size) / 2.0)


def preprocess_image(image: np.ndarray | torch.Tensor, spec: Preprocessing) -> torch.Tensor:
    """One uint8 HWC RGB image -> float32 CHW tensor ready for the network."""
    pixels = torch.as_tensor(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {tuple(pixels.shape)}")
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    new_height, new_width = resized_shape(height, width, spec.resize_size)
    chw = pixels.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
    resized = F.interpolate(
        chw, size=(new_height, new_width), mode="bilinear", align_corners=False, antialias=True
    )
    if new_height < spec.crop_size or new_width < spec.crop_size:
        raise ValueError(f"crop {spec.crop_size} is larger than the resized image {new_height}x{new_width}")
    top, left = crop_offsets(new_height, new_width, spec.crop_size)
    cropped = resized[:, :, top : top + spec.crop_size, left : left + spec.crop_size]
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((cropped / 255.0 - mean) / std).squeeze(0)


def preprocess_batch(images: Sequence[np.ndarray | torch.Tensor], spec: Preprocessing) -> torch.Tensor:
    """Several images of possibly different sizes -> one NCHW float32 batch."""
    return torch.stack([preprocess_image(image, spec) for image in images])
