"""Request bodies in the three forms the predict contract accepts and the two of the Open Inference Protocol
(v2), built once for load and accuracy; what a prediction answer holds (``predicted_class``); the in-process
payloads of a run (their description in run.json and where their results are written).

OIP bodies carry the encoded image, not pixels, as a BYTES tensor of shape [1], so an OIP server does the same
work as the native contract (decode, preprocess, infer). ``oip-v2`` sends it base64 in the JSON body;
``oip-v2-binary`` uses the binary tensor data extension: the JSON header (whose length the
``Inference-Header-Content-Length`` header gives) followed by the tensor's bytes, each BYTES element a 4-byte
little-endian length and the bytes. The output is asked for in JSON (nothing requests binary outputs): ten
probabilities cost nothing to print, the extension saves on the input (no base64: a quarter fewer bytes). A
binary answer is read all the same.
"""

from __future__ import annotations

import base64
import json
import math
import mimetypes
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.registry import PayloadFormat
from bench.results import RunDir

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
BINARY_HEADER = "Inference-Header-Content-Length"
_OIP_FLOATS = {"FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}


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


def oip_request(image_bytes: bytes, input_name: str, binary: bool) -> tuple[bytes, dict[str, str]]:
    """An OIP v2 inference request holding the encoded image as the BYTES tensor ``input_name``."""
    tensor: dict[str, Any] = {"name": input_name, "shape": [1], "datatype": "BYTES"}
    if not binary:
        tensor["data"] = [base64.b64encode(image_bytes).decode("ascii")]
        return json.dumps({"inputs": [tensor]}).encode(), {"Content-Type": "application/json"}
    raw = struct.pack("<I", len(image_bytes)) + image_bytes
    tensor["parameters"] = {"binary_data_size": len(raw)}
    header = json.dumps({"inputs": [tensor]}).encode()
    return header + raw, {"Content-Type": "application/octet-stream", BINARY_HEADER: str(len(header))}


def oip_probabilities(body: bytes, headers: Mapping[str, str]) -> np.ndarray | None:
    """The first floating-point output of an OIP v2 inference answer (JSON ``data`` or binary), flattened;
    None when the body holds none (an error, a proxy page, a truncated or malformed answer)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        split = int(lowered.get(BINARY_HEADER.lower(), len(body)))
        document = json.loads(body[:split])
    except ValueError:
        return None
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, list) or not all(isinstance(output, dict) for output in outputs):
        return None
    offset = split  # binary outputs follow the header, in the order the outputs are listed
    for output in outputs:
        parameters = output.get("parameters")
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        start, offset = offset, offset + (size if isinstance(size, int) else 0)
        dtype = _OIP_FLOATS.get(str(output.get("datatype")))
        if dtype is None:
            continue
        try:
            if isinstance(size, int):
                values = np.frombuffer(body[start:offset], dtype) if offset <= len(body) else None
            elif isinstance(output.get("data"), list):
                values = np.asarray(output["data"], dtype=dtype).ravel()
            else:
                values = None
            shape = output.get("shape")
            complete = isinstance(shape, list) and values is not None and 0 < values.size == math.prod(shape)
        except (TypeError, ValueError):
            return None
        return values if complete else None
    return None


def predicted_class(
    payload_format: PayloadFormat, status_code: int, headers: Mapping[str, str], body: bytes
) -> int | None:
    """The top-1 class index a predict answer holds (the native ``class_index``, or the argmax of an OIP
    answer's probabilities, in the model card's class order); None unless it is a 200 holding one."""
    if status_code != 200:
        return None
    if payload_format.is_oip:
        probabilities = oip_probabilities(body, headers)
        if probabilities is None or not np.isfinite(probabilities).all():
            return None
        return int(np.argmax(probabilities))
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    index = answer.get("class_index") if isinstance(answer, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def encode_image(
    image_bytes: bytes, file_name: str, payload_format: PayloadFormat, *, oip_input: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers that post these image bytes in the given form (``oip_input``: the OIP
    formats' input name)."""
    if payload_format.is_oip:
        if oip_input is None:
            raise ValueError(f"payload format {payload_format} needs the OIP input name (`oip_input`)")
        return oip_request(image_bytes, oip_input, binary=payload_format is PayloadFormat.OIP_V2_BINARY)
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


def load_payload(
    image: str | Path, payload_format: PayloadFormat, *, oip_input: str | None = None
) -> Payload:
    path = resolve_image(image)
    body, headers = encode_image(path.read_bytes(), path.name, payload_format, oip_input=oip_input)
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
