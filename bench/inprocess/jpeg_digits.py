"""The held-out digits rendered as photo-sized JPEGs: what the JPEG decode paths (JPEG_DRAFT) are measured on.

The digits as served are small PNGs that never take the JPEG path, so each one is upscaled (Pillow LANCZOS,
aspect kept) until its shorter side is ``short_side`` and JPEG-encoded in memory at ``quality``. A subset is
spread evenly over the manifest, so it is deterministic and covers every part of it. A rendered set can be
written to a folder (a manifest of the same form as the digits') so that several processes read the very
same bytes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

DEFAULT_SHORT_SIDE = 1024  # a web-sized photo; with resize_size 256 the draft decodes at 1/4 scale
DEFAULT_QUALITY = 90
RESAMPLING = "LANCZOS"
SET_MANIFEST = "manifest.json"


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
    rgb.resize(size, Image.Resampling[RESAMPLING]).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def spread_subset(entries: Sequence[Any], limit: int | None) -> list[Any]:
    """``limit`` entries spread evenly over ``entries`` (every one when ``limit`` is None or not smaller)."""
    if limit is None or limit >= len(entries):
        return list(entries)
    return [entries[index * len(entries) // limit] for index in range(max(limit, 0))]


def manifest_entries(manifest_path: Path) -> list[dict[str, Any]]:
    return list(json.loads(manifest_path.read_text())["images"])


def labelled_jpegs(
    manifest_path: Path, short_side: int, quality: int, limit: int | None = None
) -> list[LabelledJpeg]:
    """The manifest's images (or ``limit`` of them, spread evenly) upscaled and JPEG-encoded."""
    return [
        LabelledJpeg(
            entry["file"],
            int(entry["label"]),
            upscaled_jpeg((manifest_path.parent / entry["file"]).read_bytes(), short_side, quality),
        )
        for entry in spread_subset(manifest_entries(manifest_path), limit)
    ]


def write_jpeg_set(jpegs: Sequence[LabelledJpeg], folder: Path) -> Path:
    """Each JPEG as ``<stem>.jpg`` in ``folder`` plus a manifest naming them; returns the manifest's path."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for jpeg in jpegs:
        name = f"{Path(jpeg.file).stem}.jpg"
        (folder / name).write_bytes(jpeg.data)
        entries.append({"file": name, "label": jpeg.label, "source": jpeg.file})
    manifest = folder / SET_MANIFEST
    manifest.write_text(json.dumps({"images": entries}, indent=1) + "\n")
    return manifest


def read_jpeg_set(manifest_path: Path) -> list[LabelledJpeg]:
    """A set :func:`write_jpeg_set` wrote, byte for byte (named by the digit each was made from)."""
    return [
        LabelledJpeg(
            entry.get("source", entry["file"]),
            int(entry["label"]),
            (manifest_path.parent / entry["file"]).read_bytes(),
        )
        for entry in manifest_entries(manifest_path)
    ]
