"""What the opt-in JPEG_DRAFT decode shortcut costs in accuracy and buys in speed, for one runtime.

The held-out digits are small PNGs that never trigger the shortcut, so each one is upscaled to a photo-sized
image (Pillow LANCZOS, shorter side fixed) and JPEG-encoded in memory at a fixed quality. Every image is
then decoded by serving_core's own decode with the service's draft rule off and on, and predicted alone,
as one request would be. The photo payloads add decode timings on real photographs.
"""

from __future__ import annotations

import io
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from serving_core import decode
from serving_core.predictor import Predictor
from serving_core.request_path import decode_limits
from serving_core.settings import ServingSettings

DEFAULT_SHORT_SIDE = 1024  # a web-sized photo; with resize_size 256 the draft decodes at 1/4 scale
DEFAULT_QUALITY = 90
DEFAULT_PHOTO_DECODES = 15
PHOTO_GLOB = "photo_*.jpg"


@dataclass(frozen=True)
class LabelledJpeg:
    file: str
    label: int
    data: bytes


def upscaled_jpeg(image_bytes: bytes, short_side: int, quality: int) -> bytes:
    """The image resized (LANCZOS, aspect kept) so its shorter side is ``short_side``, as JPEG bytes."""
    with Image.open(io.BytesIO(image_bytes)) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    scale = short_side / min(width, height)
    size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
    buffer = io.BytesIO()
    rgb.resize(size, Image.Resampling.LANCZOS).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def labelled_jpegs(
    manifest_path: Path, short_side: int, quality: int, limit: int | None = None
) -> list[LabelledJpeg]:
    entries = json.loads(manifest_path.read_text())["images"][:limit]
    return [
        LabelledJpeg(
            entry["file"],
            int(entry["label"]),
            upscaled_jpeg((manifest_path.parent / entry["file"]).read_bytes(), short_side, quality),
        )
        for entry in entries
    ]


def draft_limits(settings: ServingSettings, predictor: Predictor, enabled: bool) -> decode.DecodeLimits:
    """The decode limits the service would use with JPEG_DRAFT set to ``enabled`` (its own rule)."""
    return decode_limits(settings.model_copy(update={"jpeg_draft": enabled}), predictor)


def timed_decode(data: bytes, limits: decode.DecodeLimits) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    image = decode.decode_image(data, limits)
    return image, (time.perf_counter() - started) * 1000.0


def _size(image: np.ndarray) -> list[int]:
    return [int(image.shape[1]), int(image.shape[0])]  # width, height, as Pillow reports sizes


def measure_digits(
    predictor: Predictor, off: decode.DecodeLimits, on: decode.DecodeLimits, jpegs: Sequence[LabelledJpeg]
) -> dict[str, Any]:
    """Top-1 with draft off and on, their agreement, the largest probability change, decode times."""
    labels: list[int] = []
    probabilities: dict[str, list[np.ndarray]] = {"off": [], "on": []}
    decode_ms: dict[str, list[float]] = {"off": [], "on": []}
    short_sides: dict[str, list[int]] = {"off": [], "on": []}
    for jpeg in jpegs:
        labels.append(jpeg.label)
        for mode, limits in (("off", off), ("on", on)):
            image, milliseconds = timed_decode(jpeg.data, limits)
            decode_ms[mode].append(milliseconds)
            short_sides[mode].append(min(image.shape[:2]))
            probabilities[mode].append(predictor.predict([image]).probabilities[0])
    truth = np.asarray(labels)
    p_off, p_on = np.stack(probabilities["off"]), np.stack(probabilities["on"])
    top_off, top_on = p_off.argmax(axis=1), p_on.argmax(axis=1)
    changed = np.flatnonzero(top_off != top_on)
    return {
        "images": len(jpegs),
        "top1_off": float(np.mean(top_off == truth)),
        "top1_on": float(np.mean(top_on == truth)),
        "top1_agreement": float(np.mean(top_off == top_on)),
        "max_abs_delta_p": float(np.max(np.abs(p_on - p_off))),
        "mean_abs_delta_p_top1": float(np.mean(np.abs(p_on.max(axis=1) - p_off.max(axis=1)))),
        "decode_ms_off": statistics.median(decode_ms["off"]),
        "decode_ms_on": statistics.median(decode_ms["on"]),
        "draft_applied": sum(on < off for off, on in zip(short_sides["off"], short_sides["on"], strict=True)),
        "short_side_off": [min(short_sides["off"]), max(short_sides["off"])],
        "short_side_on": [min(short_sides["on"]), max(short_sides["on"])],
        "changed": [
            {"file": jpegs[i].file, "label": labels[i], "off": int(top_off[i]), "on": int(top_on[i])}
            for i in changed[:20]
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
