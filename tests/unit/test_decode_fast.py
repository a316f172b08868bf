"""serving_core.decode's JPEG fast path (simplejpeg): the pixels, sizes and errors of a plain Pillow decode.

Every JPEG that should take the fast path is also decoded by ``serving_core.jpeg.decode_rgb`` directly, so an
equality cannot pass only because the image quietly fell back to Pillow.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from serving_core import jpeg
from serving_core.decode import DecodeLimits, decode_image
from serving_core.errors import ImageDecodeError, ImageTooLargeError

IMAGES = Path(__file__).resolve().parents[2] / "images"
LIMITS = DecodeLimits(max_image_pixels=50_000_000, max_aspect_ratio=1_000.0)


def pillow_rgb(data: bytes, draft_min_side: int | None = None) -> np.ndarray:
    """The reference: what decode_image did before the fast path (Pillow, draft as it was requested)."""
    with Image.open(io.BytesIO(data)) as image:
        if draft_min_side and min(image.size) > draft_min_side:
            image.draft("RGB", (draft_min_side, draft_min_side))
        return np.asarray(image.convert("RGB"))


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour fields plus noise: chroma detail for the subsampling, texture for the DCT."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 216, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR))
    return smooth + rng.integers(0, 40, smooth.shape, dtype=np.uint8)


def encode(array: np.ndarray, image_format: str, mode: str | None = None, **options: object) -> bytes:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def assert_same_as_pillow(data: bytes, limits: DecodeLimits = LIMITS, *, fast: bool) -> np.ndarray:
    expected = pillow_rgb(data, limits.draft_min_side)
    decoded = decode_image(data, limits)
    assert decoded.dtype == np.uint8 and decoded.shape == expected.shape
    if not np.array_equal(decoded, expected):
        pytest.fail(f"max |diff| {int(np.abs(decoded.astype(np.int16) - expected).max())}, expected 0")
    if fast:
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and image.mode in jpeg.FAST_MODES
            scale = jpeg.draft_scale(*image.size, limits.draft_min_side or 0)
            direct = jpeg.decode_rgb(data, *image.size, scale)
        assert direct is not None, "the JPEG fell back to Pillow"
        assert np.array_equal(direct, expected)
    return decoded


@pytest.mark.parametrize("name", ["photo_small.jpg", "photo_medium.jpg", "photo_large.jpg"])
def test_photos(name: str) -> None:
    assert_same_as_pillow((IMAGES / name).read_bytes(), fast=True)


def test_digit_pngs() -> None:
    for path in sorted((IMAGES / "digits").glob("*.png"))[::60]:
        assert_same_as_pillow(path.read_bytes(), fast=False)


@pytest.mark.parametrize("subsampling", [0, 1, 2], ids=["444", "422", "420"])
@pytest.mark.parametrize("size", [(1, 1), (5, 3), (31, 17), (7, 1001), (120, 161)], ids=str)
def test_generated_jpegs_all_subsamplings_and_odd_sizes(size: tuple[int, int], subsampling: int) -> None:
    data = encode(photo_like(*size), "JPEG", quality=90, subsampling=subsampling)
    assert_same_as_pillow(data, fast=True)


@pytest.mark.parametrize("subsampling", ["440", "411"])
def test_subsamplings_pillow_cannot_write(subsampling: str) -> None:
    data = simplejpeg.encode_jpeg(photo_like(37, 53), quality=90, colorsubsampling=subsampling)
    assert simplejpeg.decode_jpeg_header(data)[3] == subsampling
    assert_same_as_pillow(data, fast=True)
    assert_same_as_pillow(data, DecodeLimits(50_000_000, 1_000.0, draft_min_side=16), fast=True)


@pytest.mark.parametrize(
    "options",
    [
        {"progressive": True},
        {"progressive": True, "subsampling": 0},
        {"optimize": True, "quality": 100},
        {"restart_marker_blocks": 3},
        {"restart_marker_rows": 1},
    ],
    ids=["progressive", "progressive_444", "optimized_q100", "restart_blocks", "restart_rows"],
)
def test_jpeg_encodings(options: dict[str, object]) -> None:
    data = encode(photo_like(97, 133, seed=1), "JPEG", **options)
    if "restart_marker_blocks" in options or "restart_marker_rows" in options:
        assert b"\xff\xdd" in data  # a DRI marker: the restart interval was really written
    assert_same_as_pillow(data, fast=True)


@pytest.mark.parametrize("size", [(1, 1), (31, 17), (200, 150)], ids=str)
def test_grayscale_jpeg(size: tuple[int, int]) -> None:
    data = encode(photo_like(*size), "JPEG", mode="L")
    assert Image.open(io.BytesIO(data)).mode == "L"
    assert_same_as_pillow(data, fast=True)


def test_cmyk_jpeg_is_left_to_pillow() -> None:
    data = encode(photo_like(40, 30), "JPEG", mode="CMYK")
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert_same_as_pillow(data, fast=False)
    assert_same_as_pillow(data, DecodeLimits(50_000_000, 1_000.0, draft_min_side=8), fast=False)


@pytest.mark.parametrize(
    ("mode", "image_format", "options"),
    [
        ("RGBA", "PNG", {}),
        ("P", "PNG", {}),
        ("L", "PNG", {}),
        ("I;16", "PNG", {}),
        ("RGB", "WEBP", {"quality": 80}),
        ("RGB", "WEBP", {"lossless": True}),
        ("RGBA", "WEBP", {"lossless": True}),
    ],
    ids=["png_rgba", "png_p", "png_l", "png_16bit", "webp_lossy", "webp_lossless", "webp_rgba"],
)
def test_other_formats_unchanged(mode: str, image_format: str, options: dict[str, object]) -> None:
    array = photo_like(23, 41, seed=2)
    if mode == "I;16":
        data = encode((array[..., 0].astype(np.uint16) * 257), image_format)
    elif mode == "RGBA":
        data = encode(np.dstack([array, array[..., :1]]), image_format, **options)
    else:
        data = encode(array, image_format, mode=mode, **options)
    assert Image.open(io.BytesIO(data)).mode.startswith(mode.split(";")[0])
    assert_same_as_pillow(data, fast=False)


def invert(data: bytes, start: int, length: int) -> bytes:
    return data[:start] + bytes(byte ^ 0x5A for byte in data[start : start + length]) + data[start + length :]


def test_streams_libjpeg_only_warns_about_decode_as_pillow_does() -> None:
    """simplejpeg (strict) refuses these; Pillow accepts them despite libjpeg's warnings: Pillow's result."""
    data = (IMAGES / "photo_medium.jpg").read_bytes()
    for damaged in (data[:-2] + b"\x00\x00\xff\xd9", invert(data, len(data) // 2, 50)):
        assert jpeg.decode_rgb(damaged, 1800, 1200) is None
        assert_same_as_pillow(damaged, fast=False)


def truncations() -> list[tuple[str, bytes]]:
    photo = (IMAGES / "photo_medium.jpg").read_bytes()
    progressive = encode(photo_like(120, 160), "JPEG", progressive=True)
    gray = encode(photo_like(120, 160), "JPEG", mode="L")
    return [
        ("half", photo[: len(photo) // 2]),
        ("no_eoi", photo[:-2]),
        ("first_kb", photo[:1024]),
        ("progressive_half", progressive[: len(progressive) // 2]),
        ("gray_half", gray[: len(gray) // 2]),
    ]


@pytest.mark.parametrize(("name", "data"), truncations(), ids=[name for name, _ in truncations()])
def test_truncated_jpeg_is_refused_not_grey_filled(name: str, data: bytes) -> None:
    with pytest.raises(OSError):
        pillow_rgb(data)  # the reference refuses it too
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode_image(data, LIMITS)
    with pytest.raises(ImageDecodeError):
        decode_image(data, DecodeLimits(50_000_000, 1_000.0, draft_min_side=32))


@pytest.mark.parametrize(
    "data",
    [b"\x00" * 64, b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, b"\xff\xd8\xff\xd9", b"hello"],
    ids=["zeros", "soi_then_garbage", "soi_eoi", "text"],
)
def test_garbage_bytes(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(data, LIMITS)


def with_header_size(data: bytes, width: int, height: int) -> bytes:
    at = data.find(b"\xff\xc0") + 5  # SOF0: marker, length (2), precision (1), then height and width
    return data[:at] + struct.pack(">HH", height, width) + data[at + 4 :]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(("width", "height"), [(10_000, 10_000), (60_000, 60_000)])
def test_limits_refuse_from_the_header_before_decoding(width: int, height: int) -> None:
    data = with_header_size((IMAGES / "photo_small.jpg").read_bytes(), width, height)
    if width * height < 2 * Image.MAX_IMAGE_PIXELS:  # larger: Pillow's own bomb check refuses at open
        assert Image.open(io.BytesIO(data)).size == (width, height)
    with pytest.raises(ImageTooLargeError):
        decode_image(data, LIMITS)


def test_aspect_ratio_still_refused() -> None:
    with pytest.raises(ImageDecodeError, match="MAX_ASPECT_RATIO"):
        decode_image(encode(photo_like(7, 1001), "JPEG"), DecodeLimits(50_000_000, 20.0))


@pytest.mark.parametrize(
    ("size", "min_side", "expected"),
    [
        ((1800, 1200), 256, (450, 300)),  # 1/4
        ((1024, 1030), 256, (256, 258)),  # 1/4: the longer side does not force 1/2
        ((1600, 1200), 256, (400, 300)),
        ((600, 520), 256, (300, 260)),  # 1/2
        ((700, 511), 256, (700, 511)),  # 1/1: half would go below 256
        ((1050, 1025), 128, (132, 129)),  # 1/8, rounded up
        ((900, 899), 112, (113, 113)),
        ((300, 200), 256, (300, 200)),  # smaller than min_side: untouched
        ((33, 17), 8, (17, 9)),  # tiny but still a real 1/2 draft
    ],
    ids=str,
)
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_draft_size_and_pixels_equal_pillows_draft(
    size: tuple[int, int], min_side: int, expected: tuple[int, int], mode: str
) -> None:
    width, height = size
    data = encode(photo_like(height, width, seed=3), "JPEG", mode=mode, quality=85)
    limits = DecodeLimits(50_000_000, 1_000.0, draft_min_side=min_side)
    decoded = assert_same_as_pillow(data, limits, fast=True)
    assert decoded.shape == (expected[1], expected[0], 3)


def test_draft_on_the_medium_photo() -> None:
    data = (IMAGES / "photo_medium.jpg").read_bytes()
    limits = DecodeLimits(50_000_000, 20.0, draft_min_side=256)
    assert assert_same_as_pillow(data, limits, fast=True).shape == (300, 450, 3)


def test_draft_scale_matches_pillows_rule() -> None:
    """Over many header sizes (only the header is read: draft itself decodes nothing)."""
    tiny = encode(photo_like(8, 8), "JPEG")
    for width in range(1, 3000, 23):
        for height in (1, 9, 64, 255, 256, 257, 511, 512, 1023, 1024, 2049, 5000):
            for min_side in (224, 256):
                with Image.open(io.BytesIO(with_header_size(tiny, width, height))) as image:
                    if min(width, height) > min_side:
                        image.draft("RGB", (min_side, min_side))
                    scale = jpeg.draft_scale(width, height, min_side)
                    assert image.size == (-(-width // scale), -(-height // scale)), (width, height)
