"""A strategy is a registry entry over a variant: started as the bench starts it, it runs with its overrides.

The live suite runs its tests against the base variants; these start the derived strategies for real and check
that what the entry overrides (artifact, workers, threads, allocator) is what the running service uses.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
PHOTO = REPO_ROOT / "images" / "photo_small.jpg"
MALLOC_SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _info_and_prediction(service: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    with httpx.Client(base_url=service.base_url, timeout=30.0) as client:
        info = client.get("/info")
        body = {"image": base64.b64encode(PHOTO.read_bytes()).decode()}
        prediction = client.post("/predict", json=body)
    assert info.status_code == 200 and prediction.status_code == 200, (info.text, prediction.text)
    return info.json(), prediction.json()


def _process_environments(service: Any) -> list[dict[str, str]]:
    return [process.environ() for process in service.processes()]


def test_the_int8_strategy_serves_the_int8_artifact(start_registered_variant: Any) -> None:
    info, prediction = _info_and_prediction(start_registered_variant("onnx-int8"))
    exact_info, exact_prediction = _info_and_prediction(start_registered_variant("onnx"))
    assert (info["variant"], prediction["variant"]) == ("onnx-int8", "onnx-int8")
    assert info["runtime"]["artifact"].endswith("fused.optimized.int8.onnx"), info["runtime"]
    assert exact_info["runtime"]["artifact"].endswith("fused.optimized.onnx"), exact_info["runtime"]
    assert prediction["model_hash"] != exact_prediction["model_hash"]
    # approximate, yet the same answer on a clear photo, with a confidence close to the exact graph's
    assert prediction["class_index"] == exact_prediction["class_index"]
    assert abs(prediction["confidence"] - exact_prediction["confidence"]) < 0.05


def test_the_workers_strategy_runs_two_workers_on_the_same_settings(start_registered_variant: Any) -> None:
    service = start_registered_variant("onnx-2workers")  # the entry says 2
    info, _ = _info_and_prediction(service)
    assert (info["variant"], info["workers"], info["threads"]) == ("onnx-2workers", 2, 1)
    assert len(service.processes()) >= 3  # the parent and its two workers
    for environment in _process_environments(service):
        assert environment["MALLOC_ARENA_MAX"] == "1"  # inherited from onnx's settings


def test_the_threads_strategy_runs_two_intra_op_threads(start_registered_variant: Any) -> None:
    info, _ = _info_and_prediction(start_registered_variant("onnx-2threads"))
    assert (info["variant"], info["workers"], info["threads"]) == ("onnx-2threads", 1, 2)


def test_the_allocator_strategy_runs_without_the_malloc_settings(start_registered_variant: Any) -> None:
    service = start_registered_variant("onnx-malloc-default")
    info, _ = _info_and_prediction(service)
    assert info["variant"] == "onnx-malloc-default"
    for environment in _process_environments(service):
        assert not set(MALLOC_SETTINGS) & set(environment), "the unset settings reached the service"
