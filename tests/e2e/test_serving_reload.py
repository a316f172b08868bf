"""Hot reload on a real 2-worker onnx_serving: the new hash reaches every worker; bad artifacts refused."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import onnx
import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow]

DIGIT = sorted((Path(__file__).resolve().parents[2] / "images" / "digits").glob("*.png"))[0].read_bytes()


def _hashes_seen(base_url: str, requests: int = 12) -> set[str]:
    seen = set()
    for _ in range(requests):  # fresh connections spread over both workers
        response = httpx.post(
            f"{base_url}/predict", content=DIGIT, headers={"content-type": "image/png"}, timeout=30
        )
        assert response.status_code == 200, response.text
        seen.add(response.json()["model_hash"])
    return seen


@pytest.fixture
def artifact_copy(tmp_path: Path, default_artifact) -> Path:
    source = default_artifact("ONNX_MODEL")
    target = tmp_path / "artifacts"
    target.mkdir()
    for name in (source.name, "model.card.json", "manifest.json"):
        if (source.parent / name).exists():
            shutil.copy(source.parent / name, target / name)
    return target / source.name


def test_reload_swaps_every_worker_and_a_bad_artifact_keeps_the_old_model(start_local_service, artifact_copy):
    service = start_local_service(
        "onnx-reload", "onnx_serving", workers=2, env={"ONNX_MODEL": str(artifact_copy)}
    )
    auth = {"authorization": f"Bearer {service.admin_token}"}
    original = httpx.get(f"{service.base_url}/ready").json()["model_hash"]
    assert _hashes_seen(service.base_url) == {original}

    # Same graph, different bytes: a new model hash, the same predictions.
    model = onnx.load(artifact_copy)
    model.doc_string = f"reloaded at {time.time()}"
    onnx.save(model, artifact_copy)
    response = httpx.post(f"{service.base_url}/admin/reload", headers=auth, timeout=120)
    assert response.status_code == 200, response.text
    renewed = response.json()["model_hash"]
    assert renewed != original and response.json()["previous_model_hash"] == original
    service.wait_for_model_everywhere(renewed)  # the other worker follows within about a second

    artifact_copy.write_bytes(b"this is not an onnx model")
    refused = httpx.post(f"{service.base_url}/admin/reload", headers=auth, timeout=120)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "reload_failed"
    message = refused.json()["error"]["message"]
    assert message and str(artifact_copy.parent) not in message, message
    assert httpx.get(f"{service.base_url}/ready").json()["model_hash"] == renewed
    assert _hashes_seen(service.base_url) == {renewed}
