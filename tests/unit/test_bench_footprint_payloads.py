import base64
import json
from pathlib import Path

import pytest

from bench.collectors.footprint import artifact_sizes, dependency_closure_size, read_requirements
from bench.payloads import encode_image, resolve_image
from bench.registry import PayloadFormat

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_requirements_follow_includes_and_skip_options(tmp_path: Path) -> None:
    (tmp_path / "common.txt").write_text("# shared\nhttpx==0.28.1\n")
    (tmp_path / "svc.txt").write_text(
        "-r common.txt\n--index-url https://example.invalid/simple\npsutil  # metrics\n"
    )
    assert [req.name for req in read_requirements(tmp_path / "svc.txt")] == ["httpx", "psutil"]


def test_dependency_closure_follows_installed_metadata(tmp_path: Path) -> None:
    (tmp_path / "svc.txt").write_text("httpx\nnot-a-real-distribution-xyz\n")
    closure = dependency_closure_size(tmp_path / "svc.txt")
    assert {"httpx", "httpcore", "h11", "anyio", "idna", "certifi"} <= set(closure["names"])
    assert closure["distributions"] == len(closure["names"])
    assert closure["not_installed"] == ["not-a-real-distribution-xyz"]
    assert closure["total_bytes"] > 100_000


def test_torch_closure_is_far_larger_than_the_onnx_one() -> None:
    torch_closure = dependency_closure_size(REPO_ROOT / "torch_serving" / "requirements.txt")
    onnx_closure = dependency_closure_size(REPO_ROOT / "onnx_serving" / "requirements.txt")
    assert torch_closure["largest"][0]["name"] == "torch"
    assert torch_closure["total_bytes"] > 3 * onnx_closure["total_bytes"]


def test_artifact_sizes_report_missing_files(tmp_path: Path) -> None:
    present = tmp_path / "model.onnx"
    present.write_bytes(b"x" * 1234)
    sizes = artifact_sizes([present, tmp_path / "absent.onnx"])
    assert sizes["total_bytes"] == 1234
    assert sizes["files"][1]["bytes"] is None


def test_three_payload_forms_carry_the_same_bytes() -> None:
    image = b"\xff\xd8\xff\xe0fake-jpeg-bytes"
    body, headers = encode_image(image, "x.jpg", PayloadFormat.JSON)
    assert headers["Content-Type"] == "application/json"
    assert base64.b64decode(json.loads(body)["image"]) == image
    body, headers = encode_image(image, "x.png", PayloadFormat.RAW)
    assert (body, headers["Content-Type"]) == (image, "image/png")
    body, headers = encode_image(image, "x.jpg", PayloadFormat.MULTIPART)
    boundary = headers["Content-Type"].split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"--{boundary}--\r\n".encode())
    assert b'name="file"; filename="x.jpg"' in body and image in body
    with pytest.raises(ValueError, match="not an image"):
        encode_image(image, "x.txt", PayloadFormat.RAW)


def test_payload_names_resolve_in_the_images_folder(tmp_path: Path) -> None:
    (tmp_path / "photo_small.jpg").write_bytes(b"x")
    assert resolve_image("photo_small", images_dir=tmp_path) == tmp_path / "photo_small.jpg"
    with pytest.raises(FileNotFoundError, match="make images"):
        resolve_image("photo_huge", images_dir=tmp_path)
