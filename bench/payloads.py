"""Request bodies in the three forms the predict contract accepts, built once for load and accuracy; the
in-process payloads of a run (their description in run.json and where their results are written).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from bench.registry import PayloadFormat
from bench.results import RunDir

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class Payload:
    body: bytes
    headers: dict[str, str]
    source: Path

    @property
    def size(self) -> int:
        return len(self.body)


def content_type_of(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed is None or not guessed.startswith("image/"):
        raise ValueError(f"{path}: not an image file name (.jpg, .png, .webp)")
    return guessed


def encode_image(
    image_bytes: bytes, file_name: str, payload_format: PayloadFormat
) -> tuple[bytes, dict[str, str]]:
    """The body and headers that post these image bytes in the given form."""
    if payload_format is PayloadFormat.JSON:
        body = json.dumps({"image": base64.b64encode(image_bytes).decode("ascii")}).encode()
        return body, {"Content-Type": "application/json"}
    content_type = content_type_of(Path(file_name))
    if payload_format is PayloadFormat.RAW:
        return image_bytes, {"Content-Type": content_type}
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{Path(file_name).name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    body = head + image_bytes + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def resolve_image(name_or_path: str | Path, images_dir: Path = IMAGES_DIR) -> Path:
    """`photo_medium` -> images/photo_medium.jpg (first existing suffix); a path is taken as is."""
    candidate = Path(name_or_path)
    if candidate.suffix.lower() in _IMAGE_SUFFIXES:
        if candidate.is_file():
            return candidate.resolve()
        raise FileNotFoundError(f"{candidate}: no such image")
    for suffix in _IMAGE_SUFFIXES:
        path = images_dir / f"{name_or_path}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no image named {name_or_path!r} in {images_dir} (run `make images`)")


def load_payload(image: str | Path, payload_format: PayloadFormat) -> Payload:
    path = resolve_image(image)
    body, headers = encode_image(path.read_bytes(), path.name, payload_format)
    return Payload(body=body, headers=headers, source=path)


def payload_key(name_or_path: str | Path) -> str:
    """The short name of a payload (``photo_medium`` for it and for ``images/photo_medium.jpg``)."""
    candidate = Path(name_or_path)
    return candidate.stem if candidate.suffix.lower() in _IMAGE_SUFFIXES else str(name_or_path)


def describe_payload(name_or_path: str | Path, primary: str | Path) -> dict[str, Any]:
    """run.json's entry of one in-process payload: its key, file, size in bytes and pixels, and whether it
    is the run's primary payload (the one of the HTTP measurements)."""
    path = resolve_image(name_or_path)
    with Image.open(path) as image:
        width, height = image.size
    return {
        "name": payload_key(name_or_path),
        "file": str(path),
        "bytes": path.stat().st_size,
        "width": width,
        "height": height,
        "primary": payload_key(name_or_path) == payload_key(primary),
    }


def inprocess_dir(run_dir: RunDir, variant: str, repeat: int, payload: str, primary: bool) -> Path:
    """Where one repeat's in-process ceiling and floor of one payload are written: ``ceiling/r<N>`` for the
    primary payload (as in runs from before several payloads), ``ceiling/<payload>/r<N>`` for the others."""
    if primary:
        return run_dir.ceiling_dir(variant, repeat)
    return run_dir.variant_dir(variant) / "ceiling" / payload_key(payload) / f"r{repeat}"
