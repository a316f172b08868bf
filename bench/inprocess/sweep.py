"""Batch size x input image size sweep of one runtime: images/s and latency per image, decode excluded."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from serving_core.predictor import Predictor

DEFAULT_BATCH_SIZES = (1, 4, 16)
DEFAULT_IMAGE_SIZES = ((224, 224), (480, 640), (1080, 1920))  # (height, width)


def resized_photo(encoded: bytes, height: int, width: int) -> np.ndarray:
    """The payload photo at the requested size: real image content, not noise."""
    with Image.open(io.BytesIO(encoded)) as image:
        return np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR))


def time_batch(
    predictor: Predictor, images: list[np.ndarray], min_calls: int, min_seconds: float, max_calls: int
) -> dict[str, float]:
    predictor.predict(images)  # warmup: first call at this shape
    durations = []
    started = time.perf_counter()
    while len(durations) < max_calls and (
        len(durations) < min_calls or time.perf_counter() - started < min_seconds
    ):
        call = time.perf_counter()
        predictor.predict(images)
        durations.append(time.perf_counter() - call)
    batch = len(images)
    median_call = float(np.median(durations))
    return {
        "calls": len(durations),
        "images_per_s": batch * len(durations) / float(np.sum(durations)),
        "latency_per_image_ms": 1000.0 * median_call / batch,
        "call_p50_ms": 1000.0 * median_call,
    }


def run_sweep(
    predictor: Predictor,
    encoded_photo: bytes,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    image_sizes: Sequence[Sequence[int]] = DEFAULT_IMAGE_SIZES,
    min_calls: int = 3,
    min_seconds: float = 1.0,
    max_calls: int = 50,
) -> dict[str, Any]:
    cells = []
    for height, width in image_sizes:
        image = resized_photo(encoded_photo, height, width)
        for batch in batch_sizes:
            timing = time_batch(predictor, [image] * batch, min_calls, min_seconds, max_calls)
            cells.append({"height": height, "width": width, "batch": batch, **timing})
    return {"batch_sizes": list(batch_sizes), "image_sizes": [list(s) for s in image_sizes], "cells": cells}
