"""The Open Inference Protocol (v2) codec of the bench: request bodies of both formats, answers read back,
and what does not count as a prediction. No server: bodies are built and parsed by hand."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from bench.payloads import (
    BINARY_HEADER,
    encode_image,
    load_payload,
    oip_probabilities,
    oip_request,
    predicted_class,
)
from bench.registry import PayloadFormat, RegistryError, load_variants_file

IMAGE = b"\xff\xd8\xff\xe0 not really a jpeg \x00\x01\x02"
PROBABILITIES = [0.05, 0.1, 0.7, 0.15]


def _json_answer(outputs: list[dict]) -> bytes:
    return json.dumps({"model_name": "m", "outputs": outputs}).encode()


def _binary_answer(*tensors: tuple[dict, bytes]) -> tuple[bytes, dict[str, str]]:
    """An answer in the binary extension: each output's header gets its binary_data_size, the bytes follow."""
    outputs = [{**spec, "parameters": {"binary_data_size": len(raw)}} for spec, raw in tensors]
    header = json.dumps({"model_name": "m", "outputs": outputs}).encode()
    return header + b"".join(raw for _, raw in tensors), {BINARY_HEADER: str(len(header))}


def test_the_json_body_holds_the_encoded_image_base64_as_one_bytes_element() -> None:
    body, headers = encode_image(IMAGE, "x.jpg", PayloadFormat.OIP_V2, oip_input="image")
    assert headers == {"Content-Type": "application/json"}
    (tensor,) = json.loads(body)["inputs"]
    assert tensor == {
        "name": "image",
        "shape": [1],
        "datatype": "BYTES",
        "data": [base64.b64encode(IMAGE).decode()],
    }
    assert base64.b64decode(tensor["data"][0]) == IMAGE


def test_the_binary_body_is_a_json_header_then_a_length_prefixed_element() -> None:
    body, headers = oip_request(IMAGE, "pixels", binary=True)
    split = int(headers[BINARY_HEADER])
    (tensor,) = json.loads(body[:split])["inputs"]
    assert tensor == {
        "name": "pixels",
        "shape": [1],
        "datatype": "BYTES",
        "parameters": {"binary_data_size": 4 + len(IMAGE)},
    }
    assert "outputs" not in json.loads(body[:split])  # outputs are asked for in JSON (the default)
    assert struct.unpack("<I", body[split : split + 4]) == (len(IMAGE),)
    assert body[split + 4 :] == IMAGE
    assert headers["Content-Type"] == "application/octet-stream"


def test_the_binary_body_saves_the_base64_third() -> None:
    photo = Path(__file__).resolve().parents[2] / "images" / "photo_small.jpg"
    if not photo.is_file():
        pytest.skip("images/photo_small.jpg missing (make images)")
    text = load_payload(photo, PayloadFormat.OIP_V2, oip_input="image")
    binary = load_payload(photo, PayloadFormat.OIP_V2_BINARY, oip_input="image")
    size = photo.stat().st_size
    assert size < binary.size < size + 200
    assert text.size == pytest.approx(size * 4 / 3, rel=0.01)


def test_an_oip_format_needs_the_input_name() -> None:
    with pytest.raises(ValueError, match="oip_input"):
        encode_image(IMAGE, "x.jpg", PayloadFormat.OIP_V2_BINARY)


def test_a_json_answer_gives_the_argmax_of_its_probabilities() -> None:
    answer = _json_answer(
        [{"name": "probabilities", "shape": [1, 4], "datatype": "FP32", "data": PROBABILITIES}]
    )
    assert predicted_class(PayloadFormat.OIP_V2, 200, {"content-type": "application/json"}, answer) == 2
    np.testing.assert_allclose(oip_probabilities(answer, {}), PROBABILITIES)


def test_a_binary_answer_is_read_after_its_header_past_the_outputs_before_it() -> None:
    labels = struct.pack("<I", 3) + b"two"
    probabilities = np.asarray(PROBABILITIES, dtype="<f4").tobytes()
    body, headers = _binary_answer(
        ({"name": "label", "shape": [1], "datatype": "BYTES"}, labels),
        ({"name": "probabilities", "shape": [1, 4], "datatype": "FP32"}, probabilities),
    )
    lowered = {key.lower(): value for key, value in headers.items()}  # HTTP header names are case blind
    assert predicted_class(PayloadFormat.OIP_V2_BINARY, 200, lowered, body) == 2
    # a server may answer in binary whichever format was sent
    assert predicted_class(PayloadFormat.OIP_V2, 200, headers, body) == 2


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (400, _json_answer([{"name": "p", "shape": [1, 4], "datatype": "FP32", "data": PROBABILITIES}]), {}),
        (200, b'{"error": "Model fused-onnx not found"}', {}),
        (200, b"<html>502 Bad Gateway</html>", {}),
        (200, b"", {}),
        (200, _json_answer([]), {}),
        (200, _json_answer([{"name": "label", "shape": [1], "datatype": "BYTES", "data": ["2"]}]), {}),
        (200, _json_answer([{"name": "p", "shape": [1, 10], "datatype": "FP32", "data": PROBABILITIES}]), {}),
        (
            200,
            _json_answer([{"name": "p", "shape": [1, 4], "datatype": "FP32", "data": ["a", "b", "c", "d"]}]),
            {},
        ),
        (200, _json_answer([{"name": "p", "shape": [1, 1], "datatype": "FP32", "data": [float("nan")]}]), {}),
        (200, _json_answer([{"name": "p", "shape": [1, 4], "datatype": "FP32"}]), {}),
        (200, b'{"outputs": []}', {BINARY_HEADER: "not a number"}),
        (200, b'{"class_index": 2}', {}),  # a native answer is not an OIP one
    ],
    ids=[
        "http-400",
        "error-body",
        "proxy-page",
        "empty",
        "no-outputs",
        "no-floats",
        "shape-mismatch",
        "not-numbers",
        "nan",
        "no-data",
        "bad-header",
        "native-answer",
    ],
)
def test_what_holds_no_probabilities_is_no_prediction(
    status: int, body: bytes, headers: dict[str, str]
) -> None:
    assert predicted_class(PayloadFormat.OIP_V2, status, headers, body) is None


def test_a_truncated_binary_answer_is_no_prediction() -> None:
    body, headers = _binary_answer(
        ({"name": "p", "shape": [1, 4], "datatype": "FP32"}, np.asarray(PROBABILITIES, "<f4").tobytes())
    )
    assert predicted_class(PayloadFormat.OIP_V2_BINARY, 200, headers, body) == 2
    assert predicted_class(PayloadFormat.OIP_V2_BINARY, 200, headers, body[:-3]) is None


def test_the_native_answer_still_gives_its_class_index() -> None:
    assert predicted_class(PayloadFormat.JSON, 200, {}, b'{"label": "7", "class_index": 7}') == 7
    assert predicted_class(PayloadFormat.RAW, 200, {}, b'{"error": {"code": "x", "message": "y"}}') is None
    assert predicted_class(PayloadFormat.MULTIPART, 200, {}, b'{"class_index": true}') is None
    assert predicted_class(PayloadFormat.JSON, 503, {}, b'{"class_index": 7}') is None


def _variant_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "variants.toml"
    path.write_text(f'[[variant]]\nname = "triton"\nurl = "http://127.0.0.1:8000"\n{body}')
    return path


def test_an_oip_variant_gets_the_model_s_paths_unless_it_gives_its_own(tmp_path: Path) -> None:
    text = 'payload_format = "oip-v2-binary"\noip_model = "resnet"\noip_input = "INPUT0"\n'
    (variant,) = load_variants_file(_variant_file(tmp_path, text))
    assert (variant.predict_path, variant.ready_path, variant.info_path) == (
        "/v2/models/resnet/infer",
        "/v2/models/resnet/ready",
        "/v2/models/resnet",
    )
    assert variant.payload_format.is_oip and variant.oip_input == "INPUT0"
    (versioned,) = load_variants_file(
        _variant_file(tmp_path, text + 'predict_path = "/v2/models/resnet/versions/2/infer"\n')
    )
    assert versioned.predict_path == "/v2/models/resnet/versions/2/infer"
    assert versioned.ready_path == "/v2/models/resnet/ready"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('payload_format = "oip-v2"\noip_model = "m"\n', "needs `oip_model` and `oip_input`"),
        ('payload_format = "oip-v2"\noip_input = "image"\n', "needs `oip_model` and `oip_input`"),
        ('payload_format = "json"\noip_input = "image"\n', "apply only to the oip-v2"),
        ('payload_format = "oip-v2"\noip_model = "a/b"\noip_input = "image"\n', "oip_model"),
        ('payload_format = "oip-v3"\n', "payload_format"),
    ],
)
def test_oip_keys_are_checked(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        load_variants_file(_variant_file(tmp_path, body))
