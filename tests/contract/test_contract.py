"""Conformance suite: the predict contract over HTTP, against every service (local or SERVING_BASE_URL).

Everything here must hold for any variant in any language; checks that need to see the process (its log, its
worker count, its admin token) run only where the suite started the service itself.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from serving_core.schemas import BatchPredictResponse, InfoResponse, PredictResponse

pytestmark = pytest.mark.live

IMAGES = Path(__file__).resolve().parents[2] / "images"
JSON_HEADERS = {"content-type": "application/json"}
HEX_HASH = re.compile(r"^[0-9a-f]{8,64}$")


@pytest.fixture(scope="module")
def client(service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def num_classes(client: httpx.Client) -> int:
    return len(client.get("/info").json()["model_card"]["labels"])


def digit_png(index: int = 0) -> bytes:
    entry = json.loads((IMAGES / "digits/manifest.json").read_text())["images"][index]
    return (IMAGES / "digits" / entry["file"]).read_bytes()


def reencode(data: bytes, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format=image_format)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_error(response: httpx.Response, status: int | None = None, code: str | None = None) -> dict:
    if status is None:
        assert 400 <= response.status_code < 500, response.text
    else:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def assert_prediction(response: httpx.Response, top_k: int | None = None) -> PredictResponse:
    assert response.status_code == 200, response.text
    prediction = PredictResponse.model_validate(response.json())
    assert (
        prediction.top_k[0].label == prediction.label
        and prediction.top_k[0].class_index == prediction.class_index
    )
    assert prediction.confidence == pytest.approx(prediction.top_k[0].confidence)
    confidences = [score.confidence for score in prediction.top_k]
    assert (
        confidences == sorted(confidences, reverse=True) and 0.0 <= confidences[-1] <= confidences[0] <= 1.0
    )
    assert HEX_HASH.match(prediction.model_hash)
    timings = prediction.timings_ms
    assert min(timings.decode, timings.preprocess, timings.inference) >= 0
    assert timings.total >= timings.inference and timings.total >= timings.decode
    if top_k is not None:
        assert len(prediction.top_k) == top_k
    return prediction


# --- liveness, readiness, info, OpenAPI
# ---------------------------------------------------------------------------


def test_health_and_root_answer_cheaply(client: httpx.Client) -> None:
    for path in ("/health", "/"):
        response = client.get(path)
        assert response.status_code == 200 and response.json()["status"] == "ok"


def test_ready_reports_the_model(client: httpx.Client) -> None:
    body = client.get("/ready").json()
    assert body["ready"] is True and HEX_HASH.match(body["model_hash"])


def test_info_describes_variant_runtime_and_model(client: httpx.Client, service) -> None:
    info = InfoResponse.model_validate(client.get("/info").json())
    assert info.variant and info.runtime and info.versions and info.model_hash
    assert info.model_card is not None and len(info.model_card["labels"]) == info.model_card["num_classes"]
    assert info.uptime_seconds > 0 and info.threads >= 1 and info.workers >= 1
    assert "predict" in info.protocols, info.protocols  # the contract; "kserve-v2" where /v2 is served too
    if service.local:
        assert info.workers == service.workers


def test_openapi_documents_every_endpoint_and_body_form(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    for path, method in [
        ("/predict", "post"),
        ("/predict/batch", "post"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/info", "get"),
        ("/metrics", "get"),
        ("/admin/reload", "post"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing from the OpenAPI document"
    body_forms = paths["/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "image/jpeg", "image/png", "image/webp", "multipart/form-data"} <= set(
        body_forms
    )
    assert {"400", "413", "415", "422", "503"} <= set(paths["/predict"]["post"]["responses"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "html" in docs.headers["content-type"]


# --- the three body forms
# -----------------------------------------------------------------------------------------


def test_predict_json_payload_on_both_paths(client: httpx.Client) -> None:
    payload = (IMAGES / "photo_medium.json").read_bytes()
    first = assert_prediction(client.post("/predict", content=payload, headers=JSON_HEADERS))
    second = assert_prediction(client.post("/predict/", content=payload, headers=JSON_HEADERS))
    assert (first.class_index, first.model_hash) == (second.class_index, second.model_hash)
    assert first.confidence == pytest.approx(second.confidence, abs=1e-5)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_predict_raw_bytes_each_content_type(client: httpx.Client, image_format: str) -> None:
    data = reencode(digit_png(1), image_format)
    response = client.post(
        "/predict", content=data, headers={"content-type": f"image/{image_format.lower()}"}
    )
    assert_prediction(response)


def test_predict_multipart_file_matches_json(client: httpx.Client) -> None:
    data = digit_png(2)
    from_file = assert_prediction(client.post("/predict", files={"file": ("digit.png", data, "image/png")}))
    from_json = assert_prediction(client.post("/predict", json={"image": b64(data)}))
    assert from_file.class_index == from_json.class_index
    assert from_file.confidence == pytest.approx(from_json.confidence, abs=1e-5)


def test_json_with_charset_and_data_url_prefix(client: httpx.Client) -> None:
    body = json.dumps({"image": "data:image/png;base64," + b64(digit_png(3))})
    assert_prediction(
        client.post("/predict", content=body, headers={"content-type": "application/json; charset=utf-8"})
    )


# --- top_k
# ----------------------------------------------------------------------------------------------------------


def test_top_k_from_query_snake_case_and_camel_case(client: httpx.Client, num_classes: int) -> None:
    data = digit_png(4)
    assert_prediction(
        client.post("/predict?top_k=1", content=data, headers={"content-type": "image/png"}), top_k=1
    )
    assert_prediction(client.post("/predict", json={"image": b64(data), "top_k": 2}), top_k=2)
    assert_prediction(client.post("/predict", json={"image": b64(data), "topK": 3}), top_k=3)
    everything = assert_prediction(client.post("/predict", json={"image": b64(data), "topK": num_classes}))
    assert len(everything.top_k) == num_classes
    assert sum(score.confidence for score in everything.top_k) == pytest.approx(1.0, abs=1e-3)
    assert sorted(score.class_index for score in everything.top_k) == list(range(num_classes))


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "too_many"])
def test_top_k_out_of_bounds_is_422(client: httpx.Client, num_classes: int, bad: str) -> None:
    value = str(num_classes + 1) if bad == "too_many" else bad
    response = client.post(
        f"/predict?top_k={value}", content=digit_png(), headers={"content-type": "image/png"}
    )
    assert_error(response, 422)
    if bad in {"0", "too_many"}:
        assert_error(client.post("/predict", json={"image": b64(digit_png()), "top_k": int(value)}), 422)


# --- errors and limits
# ---------------------------------------------------------------------------------------------


def test_bad_base64_is_400(client: httpx.Client) -> None:
    assert_error(client.post("/predict", json={"image": "this is not base64!"}), 400, "invalid_base64")


def test_base64_of_non_image_is_400(client: httpx.Client) -> None:
    assert_error(client.post("/predict", json={"image": b64(b"plain text, not pixels")}), 400)


def test_malformed_json_is_400(client: httpx.Client) -> None:
    assert_error(client.post("/predict", content=b'{"image": "abc', headers=JSON_HEADERS), 400)


@pytest.mark.parametrize("body", [{"image": 5}, {}, {"picture": "abc"}, {"image": "abc", "top_k": "x"}, []])
def test_json_schema_errors_are_422(client: httpx.Client, body: object) -> None:
    assert_error(client.post("/predict", json=body), 422)


@pytest.mark.parametrize("content_type", ["text/plain", "image/gif", "application/octet-stream", None])
def test_unsupported_content_type_is_415(client: httpx.Client, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    assert_error(client.post("/predict", content=digit_png(), headers=headers), 415)


@pytest.mark.parametrize("case", ["garbage", "empty", "truncated_jpeg", "truncated_png"])
def test_undecodable_image_is_400(client: httpx.Client, case: str) -> None:
    jpeg = (IMAGES / "photo_small.jpg").read_bytes()
    data, content_type = {
        "garbage": (b"\x00\x01not an image at all" * 10, "image/jpeg"),
        "empty": (b"", "image/png"),
        "truncated_jpeg": (jpeg[: len(jpeg) // 3], "image/jpeg"),
        "truncated_png": (digit_png()[:200], "image/png"),
    }[case]
    assert_error(client.post("/predict", content=data, headers={"content-type": content_type}), 400)


def test_decompression_bomb_is_refused(client: httpx.Client, bomb_png: bytes) -> None:
    assert len(bomb_png) < 100_000
    assert_error(client.post("/predict", content=bomb_png, headers={"content-type": "image/png"}))
    assert_error(client.post("/predict", json={"image": b64(bomb_png)}))
    assert client.get("/ready").status_code == 200


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    oversized = b"\xff" * (21 * 1024 * 1024)
    assert_error(client.post("/predict", content=oversized, headers={"content-type": "image/jpeg"}), 413)


def test_multipart_without_file_field_is_422(client: httpx.Client) -> None:
    assert_error(client.post("/predict", files={"image": ("x.png", digit_png(), "image/png")}), 422)


def test_unknown_path_and_wrong_method_are_json(client: httpx.Client) -> None:
    assert_error(client.get("/no/such/path"), 404)
    assert_error(client.get("/predict"), 405)


# --- batch
# ---------------------------------------------------------------------------------------------------------


def test_batch_multipart_mixed_sizes_with_one_bad_item(client: httpx.Client) -> None:
    good = [
        ("medium.jpg", (IMAGES / "photo_medium.jpg").read_bytes(), "image/jpeg"),
        ("small.jpg", (IMAGES / "photo_small.jpg").read_bytes(), "image/jpeg"),
        ("digit.png", digit_png(5), "image/png"),
    ]
    files = [("files", item) for item in good[:2]] + [("files", ("bad.jpg", b"junk", "image/jpeg"))]
    files.append(("files", good[2]))
    response = client.post("/predict/batch?top_k=2", files=files)
    assert response.status_code == 200, response.text
    batch = BatchPredictResponse.model_validate(response.json())
    assert (batch.batch_size, batch.succeeded, batch.failed) == (3, 3, 1)
    assert [result.index for result in batch.results] == [0, 1, 2, 3]
    assert batch.results[2].prediction is None and batch.results[2].error.code == "invalid_image"
    for result, (name, data, content_type) in zip([batch.results[i] for i in (0, 1, 3)], good, strict=True):
        assert result.error is None and result.filename == name and len(result.prediction.top_k) == 2
        single = assert_prediction(
            client.post("/predict", content=data, headers={"content-type": content_type})
        )
        assert result.prediction.class_index == single.class_index
        assert result.prediction.confidence == pytest.approx(single.confidence, abs=1e-4)


def test_batch_json_same_size_images_with_bad_base64(client: httpx.Client) -> None:
    images = [b64(reencode(digit_png(i), "PNG")) for i in range(3)]
    response = client.post("/predict/batch", json={"images": [*images, "%%%"], "topK": 1})
    assert response.status_code == 200, response.text
    batch = BatchPredictResponse.model_validate(response.json())
    assert (batch.succeeded, batch.failed) == (3, 1)
    assert batch.results[3].error.code == "invalid_base64"
    assert all(len(result.prediction.top_k) == 1 for result in batch.results[:3])


def test_batch_errors(client: httpx.Client) -> None:
    assert_error(client.post("/predict/batch", json={"images": []}), 422)
    assert_error(client.post("/predict/batch", json={"images": ["a"] * 1000}), 422)
    assert_error(
        client.post("/predict/batch", content=digit_png(), headers={"content-type": "image/png"}), 415
    )


# --- metrics, request ids, logs
# -------------------------------------------------------------------------------------


def _counter(exposition: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in exposition.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_every_request_across_workers(client: httpx.Client, service) -> None:
    name = "serving_requests_total"
    before = _counter(client.get("/metrics").text, name, route="/predict", status="200")
    sent = 8
    for _ in range(sent):  # a fresh connection each time spreads the requests over the workers
        response = httpx.post(
            f"{service.base_url}/predict", content=digit_png(6), headers={"content-type": "image/png"}
        )
        assert response.status_code == 200
    exposition = client.get("/metrics").text
    assert _counter(exposition, name, route="/predict", status="200") - before >= sent
    for family in (
        "serving_request_duration_seconds_bucket",
        "serving_stage_duration_seconds_bucket",
        "serving_in_flight_requests",
        "serving_worker_cpu_seconds",
        "serving_worker_resident_memory_bytes",
    ):
        assert family in exposition, f"{family} missing from /metrics"
    for stage in ("decode", "preprocess", "inference", "total"):
        assert f'stage="{stage}"' in exposition
    if service.local:
        ready_workers = {
            line.split('pid="')[1].split('"')[0]
            for line in exposition.splitlines()
            if line.startswith("serving_worker_ready{") and line.endswith(" 1.0")
        }
        assert len(ready_workers) == service.workers, exposition


def test_request_id_is_echoed_and_logged(client: httpx.Client, service) -> None:
    request_id = f"contract-{uuid.uuid4().hex}"
    response = client.post(
        "/predict", content=digit_png(7), headers={"content-type": "image/png", "x-request-id": request_id}
    )
    assert response.status_code == 200 and response.headers["x-request-id"] == request_id
    generated = client.get("/health").headers.get("x-request-id", "")
    assert generated and generated != request_id
    if service.local:
        for _ in range(20):
            lines = [json.loads(line) for line in service.log_text().splitlines() if line.startswith("{")]
            matching = [line for line in lines if line.get("request_id") == request_id]
            if matching:
                break

            time.sleep(0.1)
        assert matching and matching[0]["status"] == 200 and matching[0]["path"] == "/predict"


# --- admin ------------------------------------------------------------------------------------------------
# -----------


def test_reload_refused_without_a_valid_token(client: httpx.Client, service) -> None:
    assert client.post("/admin/reload").status_code in {401, 403}
    assert_error(client.post("/admin/reload", headers={"authorization": "Bearer wrong-token"}))
    if service.local:
        assert_error(
            client.post("/admin/reload", headers={"authorization": "Bearer wrong"}), 401, "unauthorized"
        )


def test_reload_with_token_keeps_serving_the_same_artifacts(client: httpx.Client, service) -> None:
    if not service.admin_token:
        pytest.skip("no admin token for this service (set SERVING_ADMIN_TOKEN)")
    before = client.get("/ready").json()["model_hash"]
    response = client.post("/admin/reload", headers={"authorization": f"Bearer {service.admin_token}"})
    assert response.status_code == 200, response.text
    assert response.json()["model_hash"] == before
    assert client.get("/ready").json()["model_hash"] == before


# --- /infer and /infer/batch: aliases of the native endpoints
# ----------------------------------------------------------------------------


def test_infer_alias_takes_every_predict_body_form(client: httpx.Client) -> None:
    data = digit_png(6)
    expected = PredictResponse.model_validate(
        client.post("/predict", content=data, headers={"content-type": "image/png"}).json()
    )
    for response in (
        client.post("/infer", files={"file": ("digit.png", data, "image/png")}),
        client.post("/infer", json={"image": b64(data), "topK": 2}),
        client.post("/infer", content=data, headers={"content-type": "image/png"}),
    ):
        assert response.status_code == 200, response.text
        prediction = PredictResponse.model_validate(response.json())
        assert prediction.class_index == expected.class_index
        assert prediction.confidence == pytest.approx(expected.confidence, abs=1e-6)
    refused = client.post("/infer", files={"image": ("digit.png", data, "image/png")})
    assert refused.status_code == 422 and set(refused.json()["error"]) == {"code", "message"}


def test_infer_batch_alias_takes_multipart_files(client: httpx.Client) -> None:
    files = [("files", (f"digit{i}.png", digit_png(i), "image/png")) for i in (7, 8)]
    files.append(("files", ("bad.jpg", b"junk", "image/jpeg")))
    response = client.post("/infer/batch?top_k=1", files=files)
    assert response.status_code == 200, response.text
    batch = BatchPredictResponse.model_validate(response.json())
    assert (batch.batch_size, batch.succeeded, batch.failed) == (2, 2, 1)
    assert [result.filename for result in batch.results] == ["digit7.png", "digit8.png", "bad.jpg"]
    assert batch.results[2].error is not None and batch.results[2].error.code == "invalid_image"
    for result, index in zip(batch.results[:2], (7, 8), strict=True):
        single = client.post("/predict", content=digit_png(index), headers={"content-type": "image/png"})
        assert result.prediction is not None and result.prediction.class_index == single.json()["class_index"]
