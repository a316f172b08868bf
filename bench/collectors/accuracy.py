"""Top-1 accuracy over HTTP on the labelled held-out images, exactly as a client would see it.

The predicted class is the answer's ``class_index`` (the native contract) or, for the OIP formats, the argmax
of the probabilities the server returns (``bench.payloads.predicted_class``): an index in the model card's
class order, which the manifest's labels follow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from bench.collectors.target import ServiceHandle
from bench.payloads import IMAGES_DIR, encode_image, predicted_class
from bench.results import not_measured

DEFAULT_MANIFEST = IMAGES_DIR / "digits" / "manifest.json"


def measure_accuracy(service: ServiceHandle, manifest_path: Path = DEFAULT_MANIFEST) -> dict[str, Any]:
    if not manifest_path.is_file():
        return not_measured(f"{manifest_path} missing (run `make images`)")
    entries = json.loads(manifest_path.read_text())["images"]
    variant = service.variant
    url = service.url(variant.predict_path)
    correct, errors = 0, 0
    mistakes: list[dict[str, Any]] = []
    with httpx.Client(timeout=60.0) as client:
        for entry in entries:
            image_path = manifest_path.parent / entry["file"]
            body, headers = encode_image(
                image_path.read_bytes(), image_path.name, variant.payload_format, oip_input=variant.oip_input
            )
            try:
                answer = client.post(url, content=body, headers=headers)
            except httpx.TransportError as error:  # a reset connection is a failed answer, not the end
                errors += 1
                mistakes.append({"file": entry["file"], "error": type(error).__name__})
                continue
            predicted = predicted_class(
                variant.payload_format, answer.status_code, answer.headers, answer.content
            )
            if predicted is None:
                errors += 1
                mistakes.append({"file": entry["file"], "status": answer.status_code})
            elif predicted == entry["label"]:
                correct += 1
            else:
                mistakes.append({"file": entry["file"], "label": entry["label"], "predicted": predicted})
    return {
        "manifest": str(manifest_path),
        "images": len(entries),
        "correct": correct,
        "errors": errors,
        "top1": correct / len(entries) if entries else None,
        "mistakes": mistakes[:50],
    }
