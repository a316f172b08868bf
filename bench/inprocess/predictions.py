"""Every image of a labelled JPEG set decoded by serving_core's own decode and predicted alone, as one request
would be: the probabilities a variant's path gives, with its decode and decode + predict times.

``run_jpeg_predictions`` is the in-process job (``kind = "jpeg_predictions"``): it runs in the variant's own
environment, so the decode follows the variant's settings (its JPEG_DRAFT, say) by the service's own rule.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.inprocess.jpeg_digits import LabelledJpeg, read_jpeg_set
from serving_core import decode
from serving_core.predictor import Predictor
from serving_core.request_path import decode_limits
from serving_core.settings import ServingSettings


@dataclass
class Predictions:
    """One pass over a set: per image its label, probability vector, decoded shorter side and timings."""

    files: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    probabilities: list[np.ndarray] = field(default_factory=list)
    short_sides: list[int] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)

    @property
    def matrix(self) -> np.ndarray:
        """``[images, classes]`` probabilities."""
        return np.stack(self.probabilities)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": len(self.labels),
            "files": self.files,
            "labels": self.labels,
            "probabilities": [[float(p) for p in row] for row in self.probabilities],
            "short_sides": self.short_sides,
            "decode_ms": self.decode_ms,
            "total_ms": self.total_ms,
            "decode_ms_p50": statistics.median(self.decode_ms) if self.decode_ms else None,
            "total_ms_p50": statistics.median(self.total_ms) if self.total_ms else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Predictions:
        return cls(
            files=list(data["files"]),
            labels=[int(label) for label in data["labels"]],
            probabilities=[np.asarray(row, dtype=np.float64) for row in data["probabilities"]],
            short_sides=[int(side) for side in data["short_sides"]],
            decode_ms=list(data["decode_ms"]),
            total_ms=list(data["total_ms"]),
        )


def timed_decode(data: bytes, limits: decode.DecodeLimits) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    image = decode.decode_image(data, limits)
    return image, (time.perf_counter() - started) * 1000.0


def predict_each(
    predictor: Predictor, limits: decode.DecodeLimits, jpegs: Sequence[LabelledJpeg]
) -> Predictions:
    """Each image decoded within ``limits`` and predicted alone (one call per image)."""
    result = Predictions()
    for jpeg in jpegs:
        started = time.perf_counter()
        image, decode_ms = timed_decode(jpeg.data, limits)
        probabilities = predictor.predict([image]).probabilities[0]
        result.total_ms.append((time.perf_counter() - started) * 1000.0)
        result.decode_ms.append(decode_ms)
        result.files.append(jpeg.file)
        result.labels.append(jpeg.label)
        result.short_sides.append(int(min(image.shape[:2])))
        result.probabilities.append(np.asarray(probabilities))
    return result


def run_jpeg_predictions(predictor: Predictor, settings: ServingSettings, jpeg_set: str) -> dict[str, Any]:
    """The in-process job: the set ``jpeg_set`` (a manifest ``write_jpeg_set`` wrote) through the variant's
    own decode limits and predictor; one untimed warmup on the first image."""
    limits = decode_limits(settings, predictor)
    jpegs = read_jpeg_set(Path(jpeg_set))
    if jpegs:
        predictor.predict([decode.decode_image(jpegs[0].data, limits)])
    return {
        "jpeg_set": jpeg_set,
        "jpeg_draft": settings.jpeg_draft,
        "draft_min_side": limits.draft_min_side,
        **predict_each(predictor, limits, jpegs).to_dict(),
    }
