"""Top-1 accuracy over HTTP on the labelled held-out images, exactly as a client would see it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from bench.collectors.target import ServiceHandle
from bench.payloads import IMAGES_DIR, encode_image
from bench.probe import timed_post
from bench.results import not_measured

DEFAULT_MANIFEST = IMAGES_DIR / "digits" / "manifest.json"


def measure_accuracy(service: ServiceHandle, manifest_path: Path = DEFAULT_MANIFEST) -> dict[str, Any]:
    if not manifest_path.is_file():
        return not_measured(f"{manifest_path} missing (run `make images`)")
    entries = json.loads(manifest_path.read_text())["images"]
    url = service.url(service.variant.predict_path)
    correct, errors = 0, 0
    mistakes: list[dict[str, Any]] = []
    with httpx.Client(timeout=60.0) as client:
        for entry in entries:
            image_path = manifest_path.parent / entry["file"]
            body, headers = encode_image(
                image_path.read_bytes(), image_path.name, service.variant.payload_format
            )
            answer = timed_post(client, url, body, headers)
            predicted = answer.body.get("class_index") if isinstance(answer.body, dict) else None
            if answer.status_code != 200 or predicted is None:
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
