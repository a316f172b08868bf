"""What the opt-in JPEG_DRAFT decode shortcut costs in accuracy and buys in speed, for one runtime.

The held-out digits rendered as photo-sized JPEGs (``jpeg_digits``) are each decoded by serving_core's own
decode with the service's draft rule off and on, and predicted alone, as one request would be
(``predictions``); the two passes are compared as the approximation gates compare two variants
(``bench.analysis.approximation``). The photo payloads add decode timings on real photographs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.analysis.approximation import CHANGED_LISTED, compare_predictions
from bench.inprocess.jpeg_digits import DEFAULT_QUALITY, DEFAULT_SHORT_SIDE, LabelledJpeg, labelled_jpegs
from bench.inprocess.predictions import predict_each, timed_decode
from serving_core import decode
from serving_core.predictor import Predictor
from serving_core.request_path import decode_limits
from serving_core.settings import ServingSettings

DEFAULT_PHOTO_DECODES = 15
PHOTO_GLOB = "photo_*.jpg"


def draft_limits(settings: ServingSettings, predictor: Predictor, enabled: bool) -> decode.DecodeLimits:
    """The decode limits the service would use with JPEG_DRAFT set to ``enabled`` (its own rule)."""
    return decode_limits(settings.model_copy(update={"jpeg_draft": enabled}), predictor)


def _size(image: Any) -> list[int]:
    return [int(image.shape[1]), int(image.shape[0])]  # width, height, as Pillow reports sizes


def measure_digits(
    predictor: Predictor, off: decode.DecodeLimits, on: decode.DecodeLimits, jpegs: Sequence[LabelledJpeg]
) -> dict[str, Any]:
    """Top-1 with draft off and on, their agreement, the largest probability change, decode times."""
    passes = {mode: predict_each(predictor, limits, jpegs) for mode, limits in (("off", off), ("on", on))}
    labels = passes["off"].labels
    comparison = compare_predictions(labels, passes["off"].matrix, passes["on"].matrix)
    sides = {mode: result.short_sides for mode, result in passes.items()}
    return {
        "images": comparison.images,
        "top1_off": comparison.top1_reference,
        "top1_on": comparison.top1_other,
        "top1_agreement": comparison.agreement,
        "max_abs_delta_p": comparison.max_abs_delta_p,
        "mean_abs_delta_p_top1": comparison.mean_abs_delta_p_top1,
        "decode_ms_off": statistics.median(passes["off"].decode_ms),
        "decode_ms_on": statistics.median(passes["on"].decode_ms),
        "draft_applied": sum(on < off for off, on in zip(sides["off"], sides["on"], strict=True)),
        "short_side_off": [min(sides["off"]), max(sides["off"])],
        "short_side_on": [min(sides["on"]), max(sides["on"])],
        "changed": [
            {
                "file": jpegs[i].file,
                "label": labels[i],
                "off": comparison.top_reference[i],
                "on": comparison.top_other[i],
            }
            for i in comparison.changed[:CHANGED_LISTED]
        ],
    }


def measure_photo(
    predictor: Predictor, path: Path, off: decode.DecodeLimits, on: decode.DecodeLimits, decodes: int
) -> dict[str, Any]:
    """Median decode and decode+predict time over ``decodes`` rounds, off and on interleaved."""
    data = path.read_bytes()
    result: dict[str, Any] = {"file": path.name, "bytes": len(data)}
    for mode, limits in (("off", off), ("on", on)):
        image, _ = timed_decode(data, limits)
        predictor.predict([image])  # warmup at this size
        result[f"size_{mode}"] = _size(image)
    timings: dict[str, list[float]] = {"decode_off": [], "decode_on": [], "total_off": [], "total_on": []}
    for _ in range(decodes):
        for mode, limits in (("off", off), ("on", on)):
            started = time.perf_counter()
            image, milliseconds = timed_decode(data, limits)
            predictor.predict([image])
            timings[f"decode_{mode}"].append(milliseconds)
            timings[f"total_{mode}"].append((time.perf_counter() - started) * 1000.0)
    return {**result, "decodes": decodes, **{f"{key}_ms": statistics.median(v) for key, v in timings.items()}}


def run_jpeg_draft(
    predictor: Predictor,
    settings: ServingSettings,
    manifest: str,
    photos_dir: str,
    short_side: int = DEFAULT_SHORT_SIDE,
    quality: int = DEFAULT_QUALITY,
    limit: int | None = None,
    photo_decodes: int = DEFAULT_PHOTO_DECODES,
) -> dict[str, Any]:
    off = draft_limits(settings, predictor, enabled=False)
    on = draft_limits(settings, predictor, enabled=True)
    jpegs = labelled_jpegs(Path(manifest), short_side, quality, limit)
    photos = sorted(Path(photos_dir).glob(PHOTO_GLOB))
    return {
        "draft_min_side": on.draft_min_side,
        "digits": {
            "manifest": manifest,
            "short_side": short_side,
            "quality": quality,
            **measure_digits(predictor, off, on, jpegs),
        },
        "photos": [measure_photo(predictor, path, off, on, photo_decodes) for path in photos],
    }
