"""Request bodies in the three forms the predict contract accepts, built once for load and accuracy."""

from __future__ import annotations

import base64
import json
import mimetypes
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.registry import PayloadFormat

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
