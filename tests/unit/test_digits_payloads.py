"""images/: the held-out digit PNGs match their manifest and the data set, the photos and request bodies match
their stated sizes, and the generator reproduces the committed bytes."""

import base64
import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import skimage.data
from PIL import Image

from model_zoo.digits import load_split

IMAGES_DIR = Path(__file__).parents[2] / "images"
DIGITS_DIR = IMAGES_DIR / "digits"
KIB = 1024


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_payloads", IMAGES_DIR / "make_payloads.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def _decode(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def manifest() -> list[dict]:
    return json.loads((DIGITS_DIR / "manifest.json").read_text())["images"]


def test_manifest_lists_every_heldout_digit_with_its_true_label(manifest: list[dict]) -> None:
    _, heldout = load_split(seed=0)
    assert len(manifest) == len(heldout)
    assert sorted(path.name for path in DIGITS_DIR.glob("*.png")) == sorted(
        entry["file"] for entry in manifest
    )
    for entry, sample in zip(manifest, heldout, strict=True):
        assert entry["label"] == sample.label
        assert entry["label_name"] == str(sample.label)
        assert entry["source_index"] == sample.index
        pixels = _decode(DIGITS_DIR / entry["file"])
        assert pixels.shape == (entry["height"], entry["width"], 3)
        np.testing.assert_array_equal(pixels, sample.image, err_msg=entry["file"])


@pytest.mark.parametrize(
    ("name", "smallest", "largest", "min_megapixels"),
    [
        ("photo_medium", 300 * KIB, 500 * KIB, 1.0),
        ("photo_small", 1, 20 * KIB - 1, 0.0),
        ("photo_large", 1, 25 * 1024 * KIB, 12.0),
    ],
)
def test_photo_sizes_are_in_their_stated_ranges(
    name: str, smallest: int, largest: int, min_megapixels: float
) -> None:
    path = IMAGES_DIR / f"{name}.jpg"
    assert smallest <= path.stat().st_size <= largest
    with Image.open(path) as image:
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert image.width * image.height >= min_megapixels * 1e6
        image.load()  # the whole file decodes


@pytest.mark.parametrize("name", ["photo_medium", "photo_small", "photo_large"])
def test_request_body_is_the_base64_of_the_photo(name: str) -> None:
    body = json.loads((IMAGES_DIR / f"{name}.json").read_text())
    assert list(body) == ["image"]
    assert base64.b64decode(body["image"], validate=True) == (IMAGES_DIR / f"{name}.jpg").read_bytes()


def test_digit_request_body_is_the_first_manifest_image(manifest: list[dict]) -> None:
    body = json.loads((IMAGES_DIR / "digit.json").read_text())
    payload = base64.b64decode(body["image"], validate=True)
    assert payload == (DIGITS_DIR / manifest[0]["file"]).read_bytes()
    with Image.open(io.BytesIO(payload)) as image:
        assert image.format == "PNG"


def test_generator_reproduces_the_committed_bytes() -> None:
    generator = _generator()
    for photo in generator.PHOTOS:
        if photo.name == "photo_large":
            continue  # the 12.8 MP resize is slow; the same code path makes it
        regenerated = generator.encode_jpeg(getattr(skimage.data, photo.source)(), photo.size, photo.quality)
        assert regenerated == (IMAGES_DIR / f"{photo.name}.jpg").read_bytes(), photo.name


def test_images_folder_stays_small() -> None:
    total = sum(path.stat().st_size for path in IMAGES_DIR.rglob("*") if path.is_file())
    assert total < 25 * 1024 * KIB
