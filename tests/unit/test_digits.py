"""The rendered digits data set: deterministic, varied in size, stratified held-out split."""

from collections import Counter

import numpy as np
import pytest

from model_zoo.digits import (
    HELDOUT_FRACTION,
    MAX_SIDE,
    MIN_SIDE,
    load_split,
    render_digits,
    split_indices,
)

SCAN_COUNT = 1797


@pytest.fixture(scope="module")
def split() -> tuple[list, list]:
    return load_split(seed=0)


def test_split_is_stratified_disjoint_and_complete() -> None:
    train, heldout = split_indices(seed=0)
    assert not set(train) & set(heldout)
    assert sorted(train + heldout) == list(range(SCAN_COUNT))
    assert len(heldout) >= HELDOUT_FRACTION * SCAN_COUNT
    samples = render_digits(0, heldout)
    per_class = Counter(sample.label for sample in samples)
    assert sorted(per_class) == list(range(10))
    # Stratified: every class holds out about 20% of its ~180 scans.
    assert all(34 <= count <= 38 for count in per_class.values()), per_class


def test_split_depends_on_the_seed() -> None:
    assert split_indices(seed=0) == split_indices(seed=0)
    assert split_indices(seed=0)[1] != split_indices(seed=1)[1]


def test_images_are_rgb_uint8_of_varied_sizes(split: tuple[list, list]) -> None:
    train, heldout = split
    shapes = {sample.image.shape for sample in train + heldout}
    assert all(len(shape) == 3 and shape[2] == 3 for shape in shapes)
    assert all(MIN_SIDE <= side <= MAX_SIDE for shape in shapes for side in shape[:2])
    assert len(shapes) > 500, "sizes and aspect ratios should vary"
    assert any(h > w for h, w, _ in shapes) and any(w > h for h, w, _ in shapes)
    assert all(sample.image.dtype == np.uint8 for sample in heldout)


def test_dark_ink_on_light_background(split: tuple[list, list]) -> None:
    for sample in split[1][:50]:
        gray = sample.image.astype(np.float32).mean(axis=2)
        paper = np.percentile(gray, 90)  # most of a scan is blank paper
        assert paper > 180
        assert gray.min() < paper - 80


def test_rendering_is_deterministic_and_independent_of_the_subset(split: tuple[list, list]) -> None:
    reference = split[1][7]
    alone = render_digits(0, [reference.index])[0]
    assert alone.label == reference.label
    np.testing.assert_array_equal(alone.image, reference.image)
    other_seed = render_digits(1, [reference.index])[0]
    assert other_seed.image.shape != reference.image.shape or not np.array_equal(
        other_seed.image, reference.image
    )
