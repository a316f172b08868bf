"""serving_core.oip.codec: inference request bodies (JSON and the binary tensor data extension) -> numpy and
encoded images, outputs -> response bodies; every malformation a 4xx ServingError. No server, no model."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import numpy as np
import pytest

import artifact_contract
from serving_core.decode import DecodeLimits
from serving_core.errors import (
    ImageDecodeError,
    ImageTooLargeError,
    InvalidBase64Error,
    ServingError,
    error_response_for,
    is_oip_path,
)
from serving_core.middleware import is_admission_controlled
from serving_core.oip import codec, inference
from serving_core.oip.errors import BatchTooLargeError, InvalidInferenceRequestError, InvalidTensorError

LIMITS = DecodeLimits(max_image_pixels=10_000, max_aspect_ratio=20.0)
MAX_BATCH = 4
OUTPUTS = ("probabilities", "label")


def _json(**request: Any) -> bytes:
    return json.dumps(request).encode()


def _image_input(datatype: str, shape: list[int], data: Any = None, **parameters: Any) -> dict[str, Any]:
    tensor: dict[str, Any] = {"name": "image", "datatype": datatype, "shape": shape}
    if data is not None:
        tensor["data"] = data
    if parameters:
        tensor["parameters"] = parameters
    return tensor


def _binary_body(inputs: list[dict[str, Any]], *segments: bytes, **request: Any) -> tuple[bytes, str]:
    header = _json(inputs=inputs, **request)
    return header + b"".join(segments), str(len(header))


def _batch(body: bytes, header_length: str | None = None) -> codec.ImageBatch:
    return codec.image_batch(codec.parse_body(body, header_length), MAX_BATCH, LIMITS)


def _prefixed(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def _raises(error: type[ServingError], status: int, match: str | None = None) -> Any:
    assert error.status_code == status
    return pytest.raises(error, match=match)


def test_tensor_names_are_the_fused_graphs() -> None:
    assert codec.IMAGE_INPUT == artifact_contract.IMAGE_INPUT
    assert inference.PROBABILITIES_OUTPUT == artifact_contract.PROBABILITIES_OUTPUT


# --- Inference-Header-Content-Length and the body split
# -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "", "0", "99999", "²"])
def test_bad_header_length_is_400(value: str) -> None:
    with _raises(InvalidInferenceRequestError, 400, "Inference-Header-Content-Length"):
        codec.json_header_length(value, body_length=100)


def test_header_length_absent_or_valid() -> None:
    assert codec.json_header_length(None, 10) is None
    assert codec.json_header_length(" 10 ", 10) == 10


def test_binary_segments_follow_the_json_in_input_order() -> None:
    inputs = [
        {"name": "a", "datatype": "UINT8", "shape": [2], "parameters": {"binary_data_size": 2}},
        {"name": "b", "datatype": "UINT8", "shape": [1], "data": [7]},
        {"name": "c", "datatype": "UINT8", "shape": [3], "parameters": {"binary_data_size": 3}},
    ]
    body, length = _binary_body(inputs, b"\x01\x02", b"xyz")
    parsed = codec.parse_body(body, length)
    assert [None if s is None else bytes(s) for s in parsed.binary_inputs] == [b"\x01\x02", None, b"xyz"]


@pytest.mark.parametrize(
    ("segments", "match"),
    [((b"\x01",), "only 1 remain"), ((b"\x01\x02\x03",), "1 bytes after the JSON header belong to no input")],
)
def test_binary_sizes_must_account_for_every_byte(segments: tuple[bytes, ...], match: str) -> None:
    body, length = _binary_body([_image_input("BYTES", [1], binary_data_size=2)], *segments)
    with pytest.raises(ServingError, match=match) as raised:
        codec.parse_body(body, length)
    assert raised.value.status_code == 400


def test_binary_input_without_the_header_and_data_in_both_places_are_400() -> None:
    body = _json(inputs=[_image_input("BYTES", [1], binary_data_size=2)])
    with _raises(InvalidInferenceRequestError, 400, "no Inference-Header-Content-Length"):
        codec.parse_body(body, None)
    with _raises(InvalidTensorError, 400, "both data and"):
        codec.parse_body(*_binary_body([_image_input("BYTES", [1], ["x"], binary_data_size=0)]))
    with _raises(InvalidTensorError, 400, "neither data nor"):
        codec.parse_body(_json(inputs=[_image_input("BYTES", [1])]), None)


@pytest.mark.parametrize("size", [True, -1, 1.5, "4"])
def test_binary_data_size_must_be_a_non_negative_integer(size: Any) -> None:
    body, length = _binary_body([_image_input("BYTES", [1], binary_data_size=size)], b"abcd")
    with _raises(InvalidTensorError, 400, "binary_data_size"):
        codec.parse_body(body, length)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "not an inference request"),
        (_json(inputs=[]), "inputs"),
        (_json(inputs=[_image_input("UINT8", [1.0], [1])]), r"inputs\.0\.shape\.0"),
        (_json(inputs=[_image_input("UINT8", ["1"], [1])]), r"inputs\.0\.shape\.0"),
        (_json(inputs=[_image_input("UINT8", [-1], [1])]), r"inputs\.0\.shape\.0"),
        (_json(inputs=[{"name": "image", "shape": [1], "data": [1]}]), "datatype"),
        (_json(inputs=[_image_input("UINT8", [1], [1])], parameters={"x": None}), "parameters"),
        (_json(inputs=[_image_input("UINT8", [1], [1])], outputs=[]), "outputs"),
    ],
)
def test_malformed_requests_are_400(body: bytes, match: str) -> None:
    with _raises(InvalidInferenceRequestError, 400, match):
        codec.parse_body(body, None)


# --- UINT8 [N, H, W, 3]
# ---------------------------------------------------------------------------------------------------


def _pixels(count: int = 2, height: int = 3, width: int = 4) -> np.ndarray:
    return np.arange(count * height * width * 3, dtype=np.int64).reshape(count, height, width, 3) % 256


def test_uint8_flat_nested_and_binary_give_the_same_pixels() -> None:
    pixels = _pixels()
    shape = list(pixels.shape)
    flat = _batch(_json(inputs=[_image_input("UINT8", shape, pixels.ravel().tolist())]))
    nested = _batch(_json(inputs=[_image_input("UINT8", shape, pixels.tolist())]))
    raw = pixels.astype(np.uint8).tobytes()
    binary = _batch(*_binary_body([_image_input("UINT8", shape, binary_data_size=len(raw))], raw))
    for batch in (flat, nested, binary):
        assert isinstance(batch, np.ndarray) and batch.dtype == np.uint8
        np.testing.assert_array_equal(batch, pixels)


@pytest.mark.parametrize(
    ("shape", "data", "match"),
    [
        ([1, 2, 2, 3], list(range(11)), "11 elements of data for shape"),
        ([1, 2, 2, 3], np.zeros((1, 2, 3, 2), dtype=int).tolist(), "nested data of shape"),
        ([1, 2, 2, 3], [0.0] * 12, "integers 0..255"),
        ([1, 2, 2, 3], [True] * 12, "integers 0..255"),
        ([1, 2, 2, 3], ["1"] * 12, "integers 0..255"),
        ([1, 2, 2, 3], [None] * 12, "integers 0..255"),
        ([1, 2, 2, 3], [256] + [0] * 11, "integers 0..255"),
        ([1, 2, 2, 3], [-1] + [0] * 11, "integers 0..255"),
        ([1, 2, 2, 3], [2**70] + [0] * 11, "integers 0..255"),
        ([1, 2, 2, 3], [[0, 0, 0], 0], "ragged"),
        ([1, 2, 2], [0] * 12, r"shape \[N, H, W, 3\]"),
        ([1, 2, 2, 4], [0] * 16, r"shape \[N, H, W, 3\]"),
        ([1, 2, 2, 1], [0] * 4, r"shape \[N, H, W, 3\]"),
        ([0, 2, 2, 3], [], "empty dimension"),
        ([1, 0, 2, 3], [], "empty dimension"),
    ],
)
def test_bad_uint8_tensors_are_400(shape: list[int], data: list[Any], match: str) -> None:
    with _raises(InvalidTensorError, 400, match):
        _batch(_json(inputs=[_image_input("UINT8", shape, data)]))


def test_uint8_binary_length_must_match_the_shape() -> None:
    with _raises(InvalidTensorError, 400, "11 bytes of binary data for shape"):
        _batch(*_binary_body([_image_input("UINT8", [1, 2, 2, 3], binary_data_size=11)], b"\x00" * 11))


def test_uint8_limits_are_the_image_limits_checked_from_the_shape() -> None:
    # Refused from the declared shape, before the (absent) data is looked at.
    with _raises(ImageTooLargeError, 413, "MAX_IMAGE_PIXELS"):
        _batch(_json(inputs=[_image_input("UINT8", [1, 10**9, 10**9, 3], [0])]))
    with _raises(ImageDecodeError, 400, "MAX_ASPECT_RATIO"):
        _batch(_json(inputs=[_image_input("UINT8", [1, 1, 100, 3], [0])]))
    with _raises(BatchTooLargeError, 413, "MAX_BATCH_ITEMS"):
        _batch(_json(inputs=[_image_input("UINT8", [MAX_BATCH + 1, 1, 1, 3], [0])]))


# --- BYTES [N]
# ----------------------------------------------------------------------------------------------------


def test_bytes_json_base64_and_binary_length_prefixed() -> None:
    files = [b"\xff\xd8first", b"\x89PNGsecond"]
    texts = [base64.b64encode(item).decode() for item in files]
    assert _batch(_json(inputs=[_image_input("BYTES", [2], texts)])) == files
    assert (
        _batch(_json(inputs=[_image_input("BYTES", [1], ["data:image/png;base64," + texts[1]])])) == files[1:]
    )
    blob = _prefixed(*files)
    assert _batch(*_binary_body([_image_input("BYTES", [2], binary_data_size=len(blob))], blob)) == files


@pytest.mark.parametrize(
    ("shape", "data", "error", "match"),
    [
        ([2], ["aGk="], InvalidTensorError, "2 base64 strings"),
        ([1], [5], InvalidTensorError, "base64 strings"),
        ([1], [["aGk="]], InvalidTensorError, "base64 strings"),
        ([1], ["not base64!"], InvalidBase64Error, "element 0 of BYTES input 'image'"),
        ([1, 1], ["aGk="], InvalidTensorError, r"shape \[N\]"),
        ([0], [], InvalidTensorError, r"shape \[N\]"),
        ([MAX_BATCH + 1], ["aGk="] * (MAX_BATCH + 1), BatchTooLargeError, "MAX_BATCH_ITEMS"),
    ],
)
def test_bad_bytes_json_tensors(
    shape: list[int], data: list[Any], error: type[ServingError], match: str
) -> None:
    with pytest.raises(error, match=match) as raised:
        _batch(_json(inputs=[_image_input("BYTES", shape, data)]))
    assert 400 <= raised.value.status_code < 500


@pytest.mark.parametrize(
    ("blob", "count", "match"),
    [
        (b"\x01\x00", 1, "ends before element 0"),
        (_prefixed(b"abc") + b"\x01", 2, "ends before element 1"),
        (struct.pack("<I", 10) + b"abc", 1, "element 0 declares 10 bytes; 3 remain"),
        (_prefixed(b"abc") + b"zz", 1, "2 bytes of binary data after the 1 elements"),
    ],
)
def test_bad_length_prefixed_bytes_are_400(blob: bytes, count: int, match: str) -> None:
    body, length = _binary_body([_image_input("BYTES", [count], binary_data_size=len(blob))], blob)
    with _raises(InvalidTensorError, 400, match):
        _batch(body, length)


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ([_image_input("FP32", [1, 1, 1, 3], [0.0] * 3)], "datatype 'FP32'"),
        ([_image_input("uint8", [1, 1, 1, 3], [0] * 3)], "datatype 'uint8'"),
        ([{**_image_input("UINT8", [1, 1, 1, 3], [0] * 3), "name": "input0"}], "one input, 'image'"),
        ([_image_input("UINT8", [1, 1, 1, 3], [0] * 3)] * 2, "one input, 'image'"),
    ],
)
def test_the_model_takes_one_image_input(inputs: list[dict[str, Any]], match: str) -> None:
    with _raises(InvalidTensorError, 400, match):
        _batch(_json(inputs=inputs))


# --- outputs
# ----------------------------------------------------------------------------------------------------


def _outputs(**request: Any) -> list[codec.OutputChoice]:
    parsed = codec.parse_request(_json(inputs=[_image_input("BYTES", [1], ["aGk="])], **request))
    return codec.requested_outputs(parsed, OUTPUTS)


def test_requested_outputs_default_order_and_binary_flags() -> None:
    assert _outputs() == [codec.OutputChoice("probabilities", False), codec.OutputChoice("label", False)]
    every = _outputs(parameters={"binary_data_output": True})
    assert all(choice.binary for choice in every) and len(every) == 2
    chosen = _outputs(
        parameters={"binary_data_output": True},
        outputs=[{"name": "label", "parameters": {"binary_data": False}}, {"name": "probabilities"}],
    )
    assert chosen == [codec.OutputChoice("label", False), codec.OutputChoice("probabilities", True)]


@pytest.mark.parametrize(
    ("request_fields", "match"),
    [
        ({"outputs": [{"name": "logits"}]}, "unknown output 'logits'"),
        ({"outputs": [{"name": "label"}, {"name": "label"}]}, "requested twice"),
        ({"outputs": [{"name": "label", "parameters": {"classification": 3}}]}, "classification extension"),
        ({"outputs": [{"name": "label", "parameters": {"binary_data": 1}}]}, "true or false"),
        ({"parameters": {"binary_data_output": "yes"}}, "true or false"),
    ],
)
def test_bad_output_requests_are_400(request_fields: dict[str, Any], match: str) -> None:
    with _raises(InvalidTensorError, 400, match):
        _outputs(**request_fields)


def _tensors(binary: bool) -> list[codec.OutputTensor]:
    probabilities = np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32)
    return [
        codec.OutputTensor("probabilities", codec.FP32, probabilities, binary),
        codec.OutputTensor("label", codec.BYTES, ["b", "é"], binary),
    ]


def test_json_response_is_flat_row_major_and_leaves_out_none() -> None:
    encoded = codec.encode_response({"model_name": "m", "model_version": "v", "id": None}, _tensors(False))
    assert encoded.json_length is None and encoded.media_type == "application/json"
    document = json.loads(encoded.body)
    assert set(document) == {"model_name", "model_version", "outputs"}
    probabilities, labels = document["outputs"]
    assert probabilities == {
        "name": "probabilities",
        "datatype": "FP32",
        "shape": [2, 2],
        "data": [0.25, 0.75, 1.0, 0.0],
    }
    assert labels == {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["b", "é"]}


def test_binary_response_is_the_json_then_each_output_in_order() -> None:
    encoded = codec.encode_response({"model_name": "m"}, _tensors(True))
    assert encoded.media_type == "application/octet-stream" and encoded.json_length is not None
    document = json.loads(encoded.body[: encoded.json_length])
    sizes = [output["parameters"]["binary_data_size"] for output in document["outputs"]]
    assert all("data" not in output for output in document["outputs"])
    assert encoded.json_length + sum(sizes) == len(encoded.body)
    blob = encoded.body[encoded.json_length :]
    probabilities = np.frombuffer(blob[: sizes[0]], dtype="<f4").reshape(document["outputs"][0]["shape"])
    np.testing.assert_array_equal(probabilities, [[0.25, 0.75], [1.0, 0.0]])
    assert blob[sizes[0] :] == _prefixed(b"b", "é".encode())


# --- where the protocol's rules apply
# ----------------------------------------------------------------------------------------


def test_errors_under_v2_are_a_bare_string_and_inference_routes_are_admission_controlled() -> None:
    assert is_oip_path("/v2") and is_oip_path("/v2/models/x/infer") and not is_oip_path("/v2x")
    assert json.loads(error_response_for("/v2/models/x", 404, "c", "gone").body) == {"error": "gone"}
    assert json.loads(error_response_for("/predict", 400, "c", "bad").body) == {
        "error": {"code": "c", "message": "bad"}
    }
    for path in ("/predict", "/predict/batch", "/infer", "/infer/batch", "/v2/models/m/versions/1/infer"):
        assert is_admission_controlled(path), path
    for path in ("/ready", "/v2/health/ready", "/v2/models/m", "/v2/models/m/ready", "/metrics"):
        assert not is_admission_controlled(path), path
