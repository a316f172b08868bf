"""Write every payload in images/ (run by ``make images``); deterministic, so re-running changes no byte.

- digits/NNNNN.png + digits/manifest.json: the default model's held-out split (model_zoo.digits), ground truth
  for accuracy checks over HTTP.
- photo_medium.jpg (300-500 KB, like the anchor benchmark's 393 KB payload), photo_small.jpg (< 20 KB)
  and photo_large.jpg (>= 12 megapixels): real photographs bundled with scikit-image, resized with LANCZOS.
- <stem>.json request bodies, {"image": "<base64 of the file bytes>"}, for each photo and the first digit.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from model_zoo.digits import DEFAULT_SEED, LABELS, load_split

IMAGES_DIR = Path(__file__).resolve().parent
DIGITS_DIR = IMAGES_DIR / "digits"
MANIFEST = DIGITS_DIR / "manifest.json"


@dataclass(frozen=True)
class PhotoPayload:
    name: str
    source: str  # a function of skimage.data
    size: tuple[int, int]  # (width, height) after resizing
    quality: int  # JPEG quality


PHOTOS: tuple[PhotoPayload, ...] = (
    PhotoPayload("photo_medium", "coffee", (1800, 1200), 92),
    PhotoPayload("photo_small", "chelsea", (320, 213), 80),
    PhotoPayload("photo_large", "astronaut", (3584, 3584), 85),
)
DIGIT_BODY_NAME = "digit"


def encode_jpeg(pixels: np.ndarray, size: tuple[int, int], quality: int) -> bytes:
    image = Image.fromarray(pixels).convert("RGB").resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    # No EXIF, no timestamps, fixed settings: the same input always gives the same bytes.
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def request_body(payload: bytes) -> str:
    return json.dumps({"image": base64.b64encode(payload).decode("ascii")})


def write_digits(seed: int = DEFAULT_SEED) -> list[dict[str, object]]:
    _, heldout = load_split(seed)
    DIGITS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in DIGITS_DIR.glob("*.png"):
        stale.unlink()
    entries: list[dict[str, object]] = []
    for position, sample in enumerate(heldout):
        file_name = f"{position:05d}.png"
        (DIGITS_DIR / file_name).write_bytes(encode_png(sample.image))
        entries.append(
            {
                "file": file_name,
                "label": sample.label,
                "label_name": LABELS[sample.label],
                "source_index": sample.index,
                "height": int(sample.image.shape[0]),
                "width": int(sample.image.shape[1]),
            }
        )
    document = {
        "description": "held-out split of model_zoo.digits (scikit-learn load_digits rendered to RGB), "
        f"seed {seed}; source_index is the position in sklearn.datasets.load_digits()",
        "images": entries,
    }
    MANIFEST.write_text(json.dumps(document, indent=1) + "\n")
    return entries


def write_photos() -> None:
    for photo in PHOTOS:
        payload = encode_jpeg(getattr(skimage.data, photo.source)(), photo.size, photo.quality)
        (IMAGES_DIR / f"{photo.name}.jpg").write_bytes(payload)
        (IMAGES_DIR / f"{photo.name}.json").write_text(request_body(payload))
        megapixels = photo.size[0] * photo.size[1] / 1e6
        print(
            f"{photo.name}.jpg: skimage.data.{photo.source}() -> {photo.size[0]}x{photo.size[1]} "
            f"({megapixels:.1f} MP), quality {photo.quality}, {len(payload) / 1024:.0f} KiB"
        )


def main() -> int:
    entries = write_digits()
    first_digit = (DIGITS_DIR / str(entries[0]["file"])).read_bytes()
    (IMAGES_DIR / f"{DIGIT_BODY_NAME}.json").write_text(request_body(first_digit))
    print(
        f"digits/: {len(entries)} held-out PNGs + manifest.json; "
        f"{DIGIT_BODY_NAME}.json = {entries[0]['file']}"
    )
    write_photos()
    return 0


if __name__ == "__main__":
    sys.exit(main())
