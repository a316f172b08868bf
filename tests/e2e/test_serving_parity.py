"""Parity over HTTP: every held-out digit to every variant; same top-1 everywhere and accuracy >= 95% each."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow]

DIGITS = Path(__file__).resolve().parents[2] / "images" / "digits"
MIN_ACCURACY = 0.95


def classify_all(base_url: str, entries: list[dict]) -> list[int]:
    def one(entry: dict) -> int:
        data = (DIGITS / entry["file"]).read_bytes()
        response = client.post("/predict", content=data, headers={"content-type": "image/png"})
        assert response.status_code == 200, response.text
        return response.json()["class_index"]

    with httpx.Client(base_url=base_url, timeout=60) as client, ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, entries))


def test_every_variant_agrees_on_top1_and_is_accurate(all_services) -> None:
    entries = json.loads((DIGITS / "manifest.json").read_text())["images"]
    assert len(entries) >= 100
    labels = [entry["label"] for entry in entries]
    predictions = {service.name: classify_all(service.base_url, entries) for service in all_services}
    for name, predicted in predictions.items():
        accuracy = sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(labels)
        print(f"{name}: held-out top-1 {accuracy:.2%} over {len(labels)} images")
        assert accuracy >= MIN_ACCURACY, f"{name} accuracy {accuracy:.2%}"
    reference_name, reference = next(iter(predictions.items()))
    for name, predicted in predictions.items():
        disagreements = [
            entries[i]["file"] for i, (a, b) in enumerate(zip(reference, predicted, strict=True)) if a != b
        ]
        assert not disagreements, f"{name} and {reference_name} disagree on {disagreements}"
