"""Security: the admin endpoint opens only to the exact configured token (compared in constant time), and no
error body - provoked on every route, including a failure inside the model - shows a path or a stack trace.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from serving_core.app import create_app
from serving_core.errors import UnauthorizedError
from serving_core.predictor import BatchOutput
from serving_core.state import ServingApp
from tests.fixtures.bad_inputs import png_bomb
from tests.fixtures.errors import error_body_problem
from torch_serving.predictor import TorchPredictor
from torch_serving.settings import TorchServingSettings

DIGIT = (Path(__file__).resolve().parents[2] / "images/digits/00000.png").read_bytes()
DIGIT_HEADERS = {"content-type": "image/png"}


@pytest.mark.live
def test_admin_opens_only_to_the_exact_token(service) -> None:
    if not service.local:
        pytest.skip("needs a service whose admin token this suite configured")
    token = service.admin_token
    with httpx.Client(base_url=service.base_url, timeout=120) as client:
        for header in [
            None,
            "",
            "Bearer",
            f"Basic {token}",
            f"Bearer {token[:-1]}",
            f"Bearer {token}x",
            f"Bearer {token.upper()}",
            f"Bearer x{token}",
            token,
        ]:
            headers = {} if header is None else {"authorization": header}
            response = client.post("/admin/reload", headers=headers)
            assert response.status_code == 401, f"{header!r}: {response.text}"
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers.get("www-authenticate") == "Bearer"
            assert error_body_problem(response) is None
        assert client.post("/admin/reload", headers={"authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.live
def test_error_bodies_reveal_no_paths_or_traces(service) -> None:
    provoked = {
        "unknown path": ("GET", "/../../etc/passwd", None, b""),
        "unknown nested path": ("GET", "/predict/%2e%2e/%2e%2e/etc/passwd", None, b""),
        "wrong method": ("DELETE", "/predict", None, b""),
        "undecodable image": ("POST", "/predict", "image/jpeg", b"\xff\xd8\xff garbage"),
        "bomb": ("POST", "/predict", "image/png", png_bomb()),
        "bad json": ("POST", "/predict", "application/json", b"{"),
        "schema": ("POST", "/predict", "application/json", b'{"image": 1}'),
        "media type": ("POST", "/predict", "text/html", b"<html>"),
        "multipart": ("POST", "/predict", "multipart/form-data", b"--"),
        "batch": ("POST", "/predict/batch", "application/json", b'{"images": 3}'),
        "admin": ("POST", "/admin/reload", None, b""),
    }
    with httpx.Client(base_url=service.base_url, timeout=60) as client:
        for name, (method, path, content_type, body) in provoked.items():
            headers = {"content-type": content_type} if content_type else {}
            response = client.request(method, path, content=body, headers=headers)
            assert 400 <= response.status_code < 500, f"{name}: {response.status_code} {response.text}"
            assert error_body_problem(response) is None, f"{name}: {error_body_problem(response)}"
            if service.local:
                assert "server" not in response.headers, "the server header names the stack"


class _FailingPredictor(TorchPredictor):
    """A real model that fails inside inference with a message full of internals."""

    def _predict(self, images: Sequence[np.ndarray]) -> BatchOutput:
        raise RuntimeError('File "/srv/secret/model.py", line 3: tensor on /dev/shm/weights failed')


def test_a_failure_inside_the_model_is_a_generic_500(default_artifact) -> None:
    settings = TorchServingSettings(model_checkpoint=default_artifact("MODEL_CHECKPOINT"), warmup=False)
    with TestClient(create_app(_FailingPredictor, settings), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 60
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, client.get("/ready").text
            time.sleep(0.05)
        response = client.post("/predict", content=DIGIT, headers=DIGIT_HEADERS)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert error_body_problem(response) is None
    assert "secret" not in response.text and "shm" not in response.text


def test_the_admin_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []

    def recording_compare(presented: bytes, expected: bytes) -> bool:
        compared.append((presented, expected))
        return False

    monkeypatch.setattr(hmac, "compare_digest", recording_compare)
    serving = ServingApp(TorchPredictor, TorchServingSettings(admin_token=SecretStr("s3cret")))
    with pytest.raises(UnauthorizedError):
        serving.check_admin("Bearer s3cret")
    assert compared == [(b"s3cret", b"s3cret")], "the token must go through hmac.compare_digest"
