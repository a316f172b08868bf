"""serving_core.decode: the limits and failures every body goes through, on real encoded images."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from serving_core.decode import DecodeLimits, decode_base64, decode_image
from serving_core.errors import ImageDecodeError, ImageTooLargeError, InvalidBase64Error, without_paths

LIMITS = DecodeLimits(max_image_pixels=50_000_000, max_aspect_ratio=20.0)


def encode(array: np.ndarray, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def gradient(height: int, width: int) -> np.ndarray:
    rows = np.linspace(0, 255, height, dtype=np.uint8)[:, None, None]
    columns = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    return np.concatenate(
        [
            np.broadcast_to(rows, (height, width, 1)),
            np.broadcast_to(columns, (height, width, 1)),
            np.full((height, width, 1), 77, np.uint8),
        ],
        axis=2,
    )


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_lossless_formats_round_trip_exactly(image_format: str) -> None:
    original = gradient(37, 53)
    options = {"lossless": True} if image_format == "WEBP" else {}
    decoded = decode_image(encode(original, image_format, **options), LIMITS)
    assert decoded.dtype == np.uint8 and decoded.shape == (37, 53, 3)
    np.testing.assert_array_equal(decoded, original)


def test_grayscale_and_alpha_become_rgb() -> None:
    gray = encode(np.full((10, 12), 200, np.uint8), "PNG")
    assert decode_image(gray, LIMITS).shape == (10, 12, 3)
    rgba = encode(np.full((10, 12, 4), 9, np.uint8), "PNG")
    assert decode_image(rgba, LIMITS).shape == (10, 12, 3)


def test_pixel_limit_refuses_from_the_header() -> None:
    data = encode(gradient(100, 100), "PNG")
    with pytest.raises(ImageTooLargeError, match="MAX_IMAGE_PIXELS"):
        decode_image(data, DecodeLimits(max_image_pixels=9_999, max_aspect_ratio=20.0))


def test_png_bomb_header_is_refused_without_decoding() -> None:
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 20_001))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(ImageTooLargeError):
        decode_image(bomb, LIMITS)


def test_slivers_are_refused() -> None:
    with pytest.raises(ImageDecodeError, match="aspect ratio"):
        decode_image(encode(gradient(2, 100), "PNG"), LIMITS)


@pytest.mark.parametrize("data", [b"", b"GIF89a not really", b"\xff\xd8\xff\xe0 truncated jpeg"])
def test_undecodable_bytes(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(data, LIMITS)


def test_unsupported_format_is_refused_even_if_pillow_reads_it() -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(encode(gradient(8, 8), "BMP"), LIMITS)


def test_jpeg_draft_decodes_smaller_but_never_below_the_resize_size() -> None:
    data = encode(gradient(1200, 1600), "JPEG", quality=90)
    full = decode_image(data, LIMITS)
    drafted = decode_image(data, DecodeLimits(50_000_000, 20.0, draft_min_side=256))
    assert full.shape == (1200, 1600, 3)
    assert drafted.shape == (
        300,
        400,
        3,
    )  # 1/4 DCT scale: the largest reduction keeping the short side >= 256
    small = encode(gradient(200, 300), "JPEG")
    assert decode_image(small, DecodeLimits(50_000_000, 20.0, draft_min_side=256)).shape == (200, 300, 3)


def test_base64_variants() -> None:
    raw = bytes(range(256))
    text = base64.b64encode(raw).decode()
    assert decode_base64(text) == raw
    assert decode_base64("data:image/png;base64," + text) == raw
    assert decode_base64("\n".join(text[i : i + 76] for i in range(0, len(text), 76))) == raw
    with pytest.raises(InvalidBase64Error):
        decode_base64("not base64 at all!")


def test_error_messages_never_show_absolute_paths() -> None:
    message = without_paths("Load model from /srv/private/build/artifacts/fused.onnx failed")
    assert "/srv" not in message and "fused.onnx" in message
    relative = without_paths("Load model from build/artifacts/fused.onnx failed")
    assert relative == "Load model from fused.onnx failed"
