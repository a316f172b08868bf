"""serving_core.request_path: the one request path the routes and the in-process ceiling both run."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bench.inprocess import ceiling
from model_zoo.card import ModelCard
from serving_core import request_path
from serving_core.app import create_app
from serving_core.errors import ImageDecodeError, SchemaError
from serving_core.predictor import BatchOutput, LoadedModel, Predictor
from serving_core.request_path import (
    InlineExecutor,
    ThreadExecutor,
    predict_many,
    predict_one,
    request_from_body,
)
from serving_core.schemas import BatchPredictResponse, PredictResponse
from serving_core.settings import ServingSettings

CARD = Path(__file__).resolve().parents[2] / "model_zoo" / "default" / "mobilenet_v3_small_digits.card.json"
BEST = 7


class _FixedPredictor(Predictor):
    """Class 7 first, then 6, 5, ... whatever the image; counts its batched calls."""

    runtime = "fixed"

    def __init__(self, settings: ServingSettings) -> None:
        super().__init__(settings)
        self.batches: list[int] = []

    def _load(self) -> LoadedModel:
        return LoadedModel(card=ModelCard.load(CARD), artifact=CARD, artifact_sha256="ab" * 32)

    def _predict(self, images: Sequence[np.ndarray]) -> BatchOutput:
        self.batches.append(len(images))
        time.sleep(0.001)  # longer than the stages it reports, like a real predictor's own timings
        row = np.array([10 - abs(BEST - i) for i in range(len(self.labels))], dtype=np.float32)
        return BatchOutput(np.tile(row / row.sum(), (len(images), 1)), preprocess_ms=0.25, inference_ms=0.5)

    def _versions(self) -> dict[str, str]:
        return {}


def _png(size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _json(**fields: object) -> bytes:
    return json.dumps(fields).encode()


@pytest.fixture
def predictor() -> _FixedPredictor:
    fixed = _FixedPredictor(ServingSettings())
    fixed.load()
    return fixed


def _one(predictor: Predictor, body: bytes, content_type: str, top_k: int | None = None) -> PredictResponse:
    request = request_from_body(body, {"Content-Type": content_type})
    return asyncio.run(predict_one(request, top_k, predictor, ServingSettings(), InlineExecutor()))


def test_every_body_form_gives_the_same_typed_prediction(predictor: _FixedPredictor) -> None:
    png = _png()
    boundary = "b0undary"
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    responses = [
        _one(predictor, _json(image=base64.b64encode(png).decode()), "application/json"),
        _one(predictor, png, "image/png"),
        _one(predictor, multipart, f"multipart/form-data; boundary={boundary}"),
    ]
    for response in responses:
        assert isinstance(response, PredictResponse)
        assert (response.class_index, response.label) == (BEST, predictor.labels[BEST])
        assert [score.class_index for score in response.top_k] == [7, 6, 8, 5, 9]  # TOP_K=5, stable ties
        assert response.model_hash == predictor.model_hash and response.variant == "serving"
        timings = response.timings_ms
        assert (timings.preprocess, timings.inference) == (0.25, 0.5)
        assert timings.decode > 0 and timings.total >= timings.decode + 0.75
    assert predictor.batches == [1, 1, 1]


def test_top_k_comes_from_the_body_then_the_query_and_is_checked_after_decoding(predictor) -> None:
    png = base64.b64encode(_png()).decode()
    assert len(_one(predictor, _json(image=png), "application/json", top_k=2).top_k) == 2
    assert len(_one(predictor, _json(image=png, top_k=3), "application/json", top_k=2).top_k) == 3
    with pytest.raises(SchemaError, match="top_k must be between 1 and 10"):
        _one(predictor, _json(image=png, top_k=11), "application/json")
    # An undecodable image wins over a bad top_k: the service decodes before it resolves top_k.
    with pytest.raises(ImageDecodeError):
        _one(predictor, _json(image=base64.b64encode(b"not an image").decode(), top_k=11), "application/json")
    assert predictor.batches == [1, 1]


def test_a_batch_is_one_inference_call_and_a_bad_item_its_own_error(predictor) -> None:
    good = base64.b64encode(_png()).decode()
    body = _json(images=[good, "%%%not-base64", base64.b64encode(b"junk").decode(), good])
    request = request_from_body(body, {"Content-Type": "application/json"}, path="/predict/batch")
    executor = ThreadExecutor(decode_concurrency=1, inference_concurrency=1)
    response = asyncio.run(predict_many(request, None, predictor, ServingSettings(), executor))
    assert isinstance(response, BatchPredictResponse)
    assert (response.batch_size, response.succeeded, response.failed) == (2, 2, 2)
    assert predictor.batches == [2]
    codes = [item.error.code if item.error else None for item in response.results]
    assert codes[0] is None and codes[3] is None and None not in codes[1:3]
    assert all(item.prediction.class_index == BEST for item in (response.results[0], response.results[3]))


def test_the_http_route_runs_the_public_request_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int | None] = []
    original = request_path.predict_one

    async def spy(request, top_k, predictor, settings, executor):
        calls.append(top_k)
        assert isinstance(executor, ThreadExecutor)
        return await original(request, top_k, predictor, settings, executor)

    monkeypatch.setattr(request_path, "predict_one", spy)
    with TestClient(create_app(_FixedPredictor, ServingSettings(warmup=False))) as client:
        deadline = time.monotonic() + 30
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        response = client.post("/predict?top_k=2", content=_png(), headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    assert calls == [2]
    assert response.json()["class_index"] == BEST and len(response.json()["top_k"]) == 2


def test_the_in_process_ceiling_runs_the_public_request_path(predictor, monkeypatch) -> None:
    calls = 0
    original = request_path.predict_one

    async def spy(*arguments):
        nonlocal calls
        calls += 1
        return await original(*arguments)

    monkeypatch.setattr(request_path, "predict_one", spy)
    body = _json(image=base64.b64encode(_png()).decode())
    result = ceiling.run_ceiling(
        predictor,
        ServingSettings(),
        body,
        {"Content-Type": "application/json"},
        iterations=12,
        warmup=2,
        max_seconds=5.0,
    )
    assert calls == 14 and result["iterations"] == 12
    stages = result["stages_ms"]
    assert set(stages) == set(ceiling.STAGES)
    assert (stages["preprocess"], stages["inference"]) == (0.25, 0.5)
    assert stages["decode"] > 0 and stages["postprocess"] > 0
    assert result["latency_ms"]["min"] >= 0.75
