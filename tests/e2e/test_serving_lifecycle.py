"""Start-up without artifacts (503, then recovery by reload), admin disabled without a token, SIGTERM exits
cleanly.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow]

DIGIT = sorted((Path(__file__).resolve().parents[2] / "images" / "digits").glob("*.png"))[0].read_bytes()


def test_not_ready_until_loaded_then_reload_recovers(
    start_local_service, wait_ready, default_artifact, tmp_path
):
    source = default_artifact("ONNX_MODEL")
    target = tmp_path / "late" / source.name
    target.parent.mkdir()
    service = start_local_service("onnx-late", "onnx_serving", env={"ONNX_MODEL": str(target)}, wait=False)
    for _ in range(200):
        try:
            if httpx.get(f"{service.base_url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass

        time.sleep(0.1)
    not_ready = httpx.get(f"{service.base_url}/ready")
    assert not_ready.status_code == 503 and not_ready.json()["error"]["code"] == "not_ready"
    assert "not found" in not_ready.json()["error"]["message"]
    refused = httpx.post(f"{service.base_url}/predict", content=DIGIT, headers={"content-type": "image/png"})
    assert refused.status_code == 503 and refused.headers.get("retry-after")

    shutil.copy(source, target)
    shutil.copy(source.with_name("model.card.json"), target.with_name("model.card.json"))
    # The default graph is specific to the build host's CPU: without its manifest it would be refused.
    shutil.copy(source.with_name("manifest.json"), target.with_name("manifest.json"))
    auth = {"authorization": f"Bearer {service.admin_token}"}
    assert httpx.post(f"{service.base_url}/admin/reload", headers=auth, timeout=120).status_code == 200
    wait_ready(service)
    served = httpx.post(f"{service.base_url}/predict", content=DIGIT, headers={"content-type": "image/png"})
    assert served.status_code == 200


def test_admin_disabled_without_token_and_sigterm_exits_cleanly(start_local_service, default_artifact):
    service = start_local_service(
        "torch-no-admin",
        "torch_serving",
        env={
            "ADMIN_TOKEN": "",
            "MODEL_CHECKPOINT": str(default_artifact("MODEL_CHECKPOINT")),
            "WARMUP": "false",
        },
    )
    for header in ("Bearer anything", "Bearer", ""):  # an empty token must not match the empty configuration
        refused = httpx.post(f"{service.base_url}/admin/reload", headers={"authorization": header})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_disabled"
    cold = httpx.post(
        f"{service.base_url}/predict", content=DIGIT, headers={"content-type": "image/png"}, timeout=60
    )
    assert cold.status_code == 200
    # uvicorn re-raises the signal after a graceful shutdown, so the exit status reports SIGTERM.
    assert service.stop(timeout=30) in {0, -signal.SIGTERM}
    assert "Application shutdown complete" in service.log_text()
    assert "Traceback" not in service.log_text()
