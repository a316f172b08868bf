"""The KServe Open Inference Protocol v2 (REST) over HTTP, against every service of the suite that serves
through serving_core (the registry's Python variants, or a SERVING_BASE_URL service that answers ``GET /v2``),
and the native contract's ``/infer`` aliases.

What the protocol returns must equal what ``/predict`` returns for the same image: UINT8 pixels are decoded
here with serving_core.decode, exactly as the service decodes the file ``/predict`` gets. A variant that is
not a serving_core service (the Rust one) is skipped before it is started.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from bench.registry import Variant
from serving_core import decode
from serving_core.oip.schemas import InferenceResponse, ModelMetadata
from serving_core.schemas import PredictResponse
from serving_core.settings import ServingSettings
from tests.fixtures.errors import REVEALING
from tests.fixtures.variants import python_variants, variant_named

pytestmark = pytest.mark.live

IMAGES = Path(__file__).resolve().parents[2] / "images"
HEADER_LENGTH = "Inference-Header-Content-Length"
EXACT = 1e-6  # one image, the same pixels, the same predictor call: the same probabilities
BATCHED = 1e-5  # a batch of two against two calls of one: the runtime may sum in another order


@pytest.fixture(scope="module")
def service(service_pool, service_name: str):
    """The suite's service, but a variant that does not serve through serving_core (its registry command is
    not ``{python} -m <package>``) is skipped before it is started, and a service given by URL that has no
    ``/v2`` is skipped. A Python variant without ``/v2`` fails."""
    variant = variant_named(service_name)
    if variant is not None and variant.python_package is None:
        pytest.skip(
            f"{service_name}: not a serving_core service; the OIP v2 endpoints come from serving_core"
        )
    live = service_pool.get(service_name)
    if variant is None and httpx.get(f"{live.base_url}/v2", timeout=30).status_code == 404:
        pytest.skip(f"{service_name}: GET /v2 is 404, the service does not speak the OIP v2")
    return live


@pytest.fixture(scope="module")
def client(service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def info(client: httpx.Client) -> dict[str, Any]:
    return client.get("/info").json()


@pytest.fixture(scope="module")
def model(info: dict[str, Any]) -> str:
    return info["variant"]


@pytest.fixture(scope="module")
def labels(info: dict[str, Any]) -> list[str]:
    return info["model_card"]["labels"]


@pytest.fixture(scope="module")
def num_classes(labels: list[str]) -> int:
    return len(labels)


@pytest.fixture(scope="module")
def limits(info: dict[str, Any]) -> decode.DecodeLimits:
    return decode.DecodeLimits(
        max_image_pixels=info["max_image_pixels"],
        max_aspect_ratio=ServingSettings.model_fields["max_aspect_ratio"].default,
    )


def digit_png(index: int) -> bytes:
    entry = json.loads((IMAGES / "digits/manifest.json").read_text())["images"][index]
    return (IMAGES / "digits" / entry["file"]).read_bytes()


def png_of(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def native_probabilities(client: httpx.Client, data: bytes, content_type: str, classes: int) -> np.ndarray:
    """Every class's probability from ``POST /predict`` (top_k = all classes)."""
    response = client.post(f"/predict?top_k={classes}", content=data, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    probabilities = np.zeros(classes)
    for score in PredictResponse.model_validate(response.json()).top_k:
        probabilities[score.class_index] = score.confidence
    return probabilities


def uint8_input(pixels: np.ndarray, nested: bool = False) -> dict[str, Any]:
    batch = pixels if pixels.ndim == 4 else pixels[np.newaxis]
    data = batch.tolist() if nested else batch.ravel().tolist()
    return {"name": "image", "datatype": "UINT8", "shape": list(batch.shape), "data": data}


def bytes_input(*files: bytes) -> dict[str, Any]:
    return {"name": "image", "datatype": "BYTES", "shape": [len(files)], "data": [b64(f) for f in files]}


def binary_request(inputs: list[tuple[dict[str, Any], bytes]], **fields: Any) -> tuple[bytes, dict[str, str]]:
    """A binary tensor data extension body: the JSON header, then each input's bytes."""
    tensors = [{**tensor, "parameters": {"binary_data_size": len(raw)}} for tensor, raw in inputs]
    header = json.dumps({"inputs": tensors, **fields}).encode()
    body = header + b"".join(raw for _, raw in inputs)
    return body, {HEADER_LENGTH: str(len(header)), "content-type": "application/octet-stream"}


def length_prefixed(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def infer_json(client: httpx.Client, model: str, **request: Any) -> InferenceResponse:
    response = client.post(f"/v2/models/{model}/infer", json=request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return InferenceResponse.model_validate(response.json())


def binary_response(response: httpx.Response) -> tuple[InferenceResponse, dict[str, bytes]]:
    """The JSON part and each binary output's bytes; every byte of the body must belong to one."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/octet-stream")
    length = int(response.headers[HEADER_LENGTH])
    parsed = InferenceResponse.model_validate_json(response.content[:length])
    blobs: dict[str, bytes] = {}
    offset = length
    for output in parsed.outputs:
        size = (output.parameters or {}).get("binary_data_size")
        if size is not None:
            assert output.data is None
            blobs[output.name] = response.content[offset : offset + int(size)]
            offset += int(size)
    assert offset == len(response.content)
    return parsed, blobs


def output(response: InferenceResponse, name: str) -> Any:
    (found,) = [tensor for tensor in response.outputs if tensor.name == name]
    return found


def probabilities_of(response: InferenceResponse) -> np.ndarray:
    tensor = output(response, "probabilities")
    assert tensor.datatype == "FP32"
    return np.asarray(tensor.data, dtype=np.float64).reshape(tensor.shape)


def assert_oip_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    assert not REVEALING.search(body["error"]), body
    return body["error"]


# --- metadata and health
# --------------------------------------------------------------------------------------------------


def test_oip_server_metadata_health_and_info(client: httpx.Client) -> None:
    metadata = client.get("/v2")
    assert metadata.status_code == 200, metadata.text
    body = metadata.json()
    assert body["name"] and body["version"] and "binary_tensor_data" in body["extensions"]
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert {"predict", "kserve-v2"} <= set(client.get("/info").json()["protocols"])


def test_oip_model_metadata_shapes_and_datatypes(
    client: httpx.Client, model: str, num_classes: int, info: dict[str, Any]
) -> None:
    response = client.get(f"/v2/models/{model}")
    assert response.status_code == 200, response.text
    metadata = ModelMetadata.model_validate(response.json())
    model_hash = client.get("/ready").json()["model_hash"]
    assert metadata.name == model and metadata.versions == [model_hash] and metadata.platform
    assert [(t.name, t.datatype, t.shape) for t in metadata.inputs] == [("image", "UINT8", [-1, -1, -1, 3])]
    assert [(t.name, t.datatype, t.shape) for t in metadata.outputs] == [
        ("probabilities", "FP32", [-1, num_classes]),
        ("label", "BYTES", [-1]),
    ]
    alias = info["model_card"]["name"]
    for path in (f"/v2/models/{model}/versions/{model_hash}", f"/v2/models/{alias}"):
        assert client.get(path).json() == response.json(), path
    for path in (f"/v2/models/{model}/ready", f"/v2/models/{alias}/versions/{model_hash}/ready"):
        assert client.get(path).json() == {"name": model, "ready": True}, path


# --- inference equals /predict
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_oip_uint8_json_equals_native_predict(
    client: httpx.Client, model: str, num_classes: int, limits: decode.DecodeLimits, nested: bool
) -> None:
    png = digit_png(0)
    pixels = decode.decode_image(png, limits)
    response = infer_json(client, model, id="uint8-json", inputs=[uint8_input(pixels, nested)])
    assert (response.model_name, response.id) == (model, "uint8-json")
    assert response.model_version == client.get("/ready").json()["model_hash"]
    assert set(response.parameters or {}) >= {"decode_ms", "preprocess_ms", "inference_ms", "total_ms"}
    probabilities = probabilities_of(response)
    assert probabilities.shape == (1, num_classes)
    native = native_probabilities(client, png, "image/png", num_classes)
    np.testing.assert_allclose(probabilities[0], native, rtol=0, atol=EXACT)
    label = output(response, "label")
    assert label.datatype == "BYTES" and label.shape == [1]
    assert label.data == [
        client.post("/predict", content=png, headers={"content-type": "image/png"}).json()["label"]
    ]


@pytest.mark.parametrize(("file", "content_type"), [("photo_small.jpg", "image/jpeg"), (None, "image/png")])
def test_oip_bytes_json_equals_native_predict(
    client: httpx.Client, model: str, num_classes: int, file: str | None, content_type: str
) -> None:
    data = (IMAGES / file).read_bytes() if file else digit_png(1)
    response = infer_json(client, model, inputs=[bytes_input(data)], outputs=[{"name": "probabilities"}])
    assert [tensor.name for tensor in response.outputs] == ["probabilities"]
    native = native_probabilities(client, data, content_type, num_classes)
    np.testing.assert_allclose(probabilities_of(response)[0], native, rtol=0, atol=EXACT)


def test_oip_binary_request_and_binary_response(
    client: httpx.Client, model: str, num_classes: int, limits: decode.DecodeLimits, labels: list[str]
) -> None:
    png = digit_png(2)
    pixels = decode.decode_image(png, limits)
    native = native_probabilities(client, png, "image/png", num_classes)
    tensor = {"name": "image", "datatype": "UINT8", "shape": [1, *pixels.shape]}
    body, headers = binary_request([(tensor, pixels.tobytes())], parameters={"binary_data_output": True})
    parsed, blobs = binary_response(client.post(f"/v2/models/{model}/infer", content=body, headers=headers))
    assert set(blobs) == {"probabilities", "label"}
    probabilities = np.frombuffer(blobs["probabilities"], dtype="<f4").reshape(num_classes)
    np.testing.assert_allclose(probabilities, native, rtol=0, atol=EXACT)
    (label_length,) = struct.unpack_from("<I", blobs["label"])
    assert (
        blobs["label"][4:].decode() == labels[np.argmax(native)] and len(blobs["label"]) == 4 + label_length
    )

    # BYTES as length-prefixed elements; only the probabilities asked for in binary, the label in JSON.
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1]}
    body, headers = binary_request(
        [(tensor, length_prefixed(png))],
        outputs=[{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "label"}],
    )
    parsed, blobs = binary_response(client.post(f"/v2/models/{model}/infer", content=body, headers=headers))
    assert set(blobs) == {"probabilities"} and output(parsed, "label").data == [labels[np.argmax(native)]]
    probabilities = np.frombuffer(blobs["probabilities"], dtype="<f4")
    np.testing.assert_allclose(probabilities, native, rtol=0, atol=EXACT)


def test_oip_batch_of_two_same_size_images(
    client: httpx.Client, model: str, num_classes: int, limits: decode.DecodeLimits, labels: list[str]
) -> None:
    first, second = (decode.decode_image(digit_png(index), limits) for index in (3, 4))
    height, width = min(first.shape[0], second.shape[0]), min(first.shape[1], second.shape[1])
    crops = [np.ascontiguousarray(image[:height, :width]) for image in (first, second)]
    natives = [native_probabilities(client, png_of(crop), "image/png", num_classes) for crop in crops]

    as_pixels = infer_json(client, model, inputs=[uint8_input(np.stack(crops))])
    as_files = infer_json(client, model, inputs=[bytes_input(*(png_of(crop) for crop in crops))])
    for response in (as_pixels, as_files):
        probabilities = probabilities_of(response)
        assert probabilities.shape == (2, num_classes)
        np.testing.assert_allclose(probabilities, np.stack(natives), rtol=0, atol=BATCHED)
        assert output(response, "label").data == [labels[np.argmax(native)] for native in natives]


# --- errors: 4xx JSON {"error": "..."}, never a 5xx
# -------------------------------------------------------------------------------------


def _json_case(request: Any) -> tuple[bytes, dict[str, str]]:
    return json.dumps(request).encode(), {"content-type": "application/json"}


def _bad_cases(info: dict[str, Any], bomb: bytes) -> dict[str, tuple[str | None, bytes, dict[str, str], int]]:
    """name -> (model path segment or None for the served model, body, headers, status)."""
    pixels = {"name": "image", "datatype": "UINT8", "shape": [1, 2, 2, 3], "data": [0] * 12}
    side = math.isqrt(info["max_image_pixels"]) + 1
    oversized_body = b"{" + b" " * info["max_body_bytes"] + b"}"
    jpeg = (IMAGES / "photo_small.jpg").read_bytes()
    binary_body, binary_headers = binary_request(
        [({"name": "image", "datatype": "BYTES", "shape": [1]}, length_prefixed(jpeg))]
    )
    return {
        "wrong_datatype": (None, *_json_case({"inputs": [{**pixels, "datatype": "FP32"}]}), 400),
        "shape_data_mismatch": (None, *_json_case({"inputs": [{**pixels, "data": [0] * 11}]}), 400),
        "four_channels": (
            None,
            *_json_case({"inputs": [{**pixels, "shape": [1, 2, 1, 4], "data": [0] * 8}]}),
            400,
        ),
        "not_nhwc": (None, *_json_case({"inputs": [{**pixels, "shape": [4, 3]}]}), 400),
        "values_over_255": (None, *_json_case({"inputs": [{**pixels, "data": [256] * 12}]}), 400),
        "unknown_input": (None, *_json_case({"inputs": [{**pixels, "name": "input0"}]}), 400),
        "unknown_output": (None, *_json_case({"inputs": [pixels], "outputs": [{"name": "logits"}]}), 400),
        "batch_over_limit": (
            None,
            *_json_case({"inputs": [{**pixels, "shape": [info["max_batch_items"] + 1, 2, 2, 3]}]}),
            413,
        ),
        "pixels_over_limit": (None, *_json_case({"inputs": [{**pixels, "shape": [1, side, side, 3]}]}), 413),
        "body_over_limit": (None, oversized_body, {"content-type": "application/json"}, 413),
        "header_length_not_a_number": (None, binary_body, {**binary_headers, HEADER_LENGTH: "abc"}, 400),
        "header_length_past_the_body": (
            None,
            binary_body,
            {**binary_headers, HEADER_LENGTH: str(len(binary_body) + 1)},
            400,
        ),
        "header_length_short": (None, binary_body, {**binary_headers, HEADER_LENGTH: "10"}, 400),
        "binary_without_header_length": (
            None,
            binary_body,
            {key: value for key, value in binary_headers.items() if key != HEADER_LENGTH},
            400,
        ),
        "bad_base64": (None, *_json_case({"inputs": [{**bytes_input(b"x"), "data": ["not base64!"]}]}), 400),
        "undecodable_image": (None, *_json_case({"inputs": [bytes_input(b"plain text, not pixels")]}), 400),
        "decompression_bomb": (None, *_json_case({"inputs": [bytes_input(bomb)]}), 413),
        "invalid_json": (None, b'{"inputs": [', {"content-type": "application/json"}, 400),
        "not_a_request": (None, *_json_case({"inputs": "image"}), 400),
        "unsupported_content_type": (None, b"{}", {"content-type": "text/plain"}, 415),
        "unknown_model": ("no-such-model", *_json_case({"inputs": [pixels]}), 404),
        "unknown_version": (
            f"{info['variant']}/versions/no-such-version",
            *_json_case({"inputs": [pixels]}),
            404,
        ),
    }


_TINY_LIMITS = {"max_image_pixels": 4, "max_body_bytes": 1, "max_batch_items": 1, "variant": ""}
CASE_NAMES = list(_bad_cases(_TINY_LIMITS, b""))  # the names only: the cases follow the service's limits


@pytest.fixture(scope="module")
def bad_cases(
    info: dict[str, Any], bomb_png: bytes
) -> dict[str, tuple[str | None, bytes, dict[str, str], int]]:
    return _bad_cases(info, bomb_png)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_oip_bad_requests_are_4xx_json_errors(
    client: httpx.Client, model: str, bad_cases: dict[str, Any], case: str
) -> None:
    target, body, headers, status = bad_cases[case]
    response = client.post(f"/v2/models/{target or model}/infer", content=body, headers=headers)
    assert_oip_error(response, status)
    assert client.get("/v2/health/ready").status_code == 200


def test_oip_unknown_model_paths_and_methods_are_json_errors(client: httpx.Client, model: str) -> None:
    for path in ("/v2/models/no-such-model", "/v2/models/no-such-model/ready", "/v2/no/such/path"):
        assert_oip_error(client.get(path), 404)
    assert_oip_error(client.get(f"/v2/models/{model}/infer"), 405)
    assert_oip_error(client.delete("/v2"), 405)


def _requests_counted(client: httpx.Client, route: str) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if (
            line.startswith("serving_requests_total{")
            and f'route="{route}"' in line
            and 'status="200"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_oip_infer_is_counted_in_the_same_metrics(client: httpx.Client, model: str) -> None:
    route = "/v2/models/{model_name}/infer"
    before = _requests_counted(client, route)
    for _ in range(3):
        infer_json(client, model, inputs=[bytes_input(digit_png(5))])
    assert _requests_counted(client, route) - before >= 3


# --- before the model is ready; the in-flight limit
# ---------------------------------------------------------------------------------------


def _startable_python_variants() -> list[str]:
    """The Python variants this suite starts itself (none when it runs against SERVING_BASE_URL)."""
    if os.environ.get("SERVING_BASE_URL", "").strip():
        return []
    chosen = {name.strip() for name in os.environ.get("SERVING_VARIANTS", "").split(",") if name.strip()}
    return [name for name in python_variants() if not chosen or name in chosen]


def _wait_until_live(base_url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/v2/health/live", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{base_url} not live after {timeout:.0f} s")


def _artifact_variable(variant: Variant) -> str | None:
    """The variable that names the served artifact: its ``[variant.tests] artifact_env``, else the
    ``[variant.local]`` env entry whose value is the first of its ``artifacts``."""
    if variant.tests.artifact_env:
        return variant.tests.artifact_env
    served = variant.artifact_paths[:1]
    for key, value in (variant.local.env if variant.local else {}).items():
        if served and "{" not in value and variant.resolve(Path(value)) == served[0]:
            return key
    return None


@pytest.mark.parametrize("variant", _startable_python_variants())
def test_oip_not_ready_is_503_json(variant: str, start_registered_variant, tmp_path: Path) -> None:
    """Started with its artifact missing, the service is live but never ready."""
    artifact_variable = _artifact_variable(python_variants()[variant])
    if artifact_variable is None:
        pytest.skip(f"{variant}: no variable names its artifact ([variant.tests] artifact_env)")
    missing = tmp_path / "not-built-yet" / "model.bin"
    service = start_registered_variant(
        variant, name=f"{variant}-not-ready", env={artifact_variable: str(missing)}, wait=False
    )
    _wait_until_live(service.base_url)
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        ready = client.get("/v2/health/ready")
        assert "not loaded" in assert_oip_error(ready, 503) and ready.headers.get("retry-after")
        for path in (f"/v2/models/{variant}", f"/v2/models/{variant}/ready"):
            assert_oip_error(client.get(path), 503)
        assert_oip_error(
            client.post(f"/v2/models/{variant}/infer", json={"inputs": [bytes_input(b"x")]}), 503
        )
        assert client.get("/v2").status_code == 200


def _hold_infer_request(base_url: str, model: str, body: bytes) -> Callable[[], bytes]:
    """Send an infer request's headers and the first bytes of its body, keeping it in flight on the service;
    the returned function sends the rest and returns the raw response."""
    address = urlsplit(base_url)
    connection = socket.create_connection((address.hostname, address.port), timeout=60)
    head = (
        f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    connection.sendall(head.encode() + body[:1])

    def finish() -> bytes:
        connection.sendall(body[1:])
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        connection.close()
        return received

    return finish


@pytest.mark.slow
@pytest.mark.parametrize("variant", _startable_python_variants())
def test_oip_infer_counts_against_the_in_flight_limit(variant: str, start_registered_variant) -> None:
    service = start_registered_variant(
        variant, name=f"{variant}-in-flight", workers=1, env={"MAX_IN_FLIGHT": "1", "WARMUP": "false"}
    )
    request = {"inputs": [bytes_input(digit_png(9))]}
    finish = _hold_infer_request(service.base_url, variant, json.dumps(request).encode())
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        deadline = time.monotonic() + 30
        while (shed := client.post(f"/v2/models/{variant}/infer", json=request)).status_code != 503:
            assert shed.status_code == 200 and time.monotonic() < deadline, shed.text
            time.sleep(0.05)
        assert "in flight" in assert_oip_error(shed, 503) and shed.headers.get("retry-after")
        assert (
            client.post("/infer", content=digit_png(9), headers={"content-type": "image/png"}).status_code
            == 503
        )
        assert client.get("/v2/health/ready").status_code == 200  # probes are never shed
        held = finish()
        assert held.startswith(b"HTTP/1.1 200"), held[:300]
        assert client.post(f"/v2/models/{variant}/infer", json=request).status_code == 200
