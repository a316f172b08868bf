"""The default model's data: scikit-learn's bundled handwritten digits, rendered as photos of arbitrary size.

scikit-learn ships 1,797 real 8x8 scans (ink intensity 0..16). Each scan is rendered deterministically to an
RGB uint8 HWC image: dark ink on a light, slightly tinted background, 40..160 px per side with a random aspect
ratio, plus faint sensor noise. The services therefore see images of many sizes and shapes, and training goes
through exactly the preprocessing they apply (resize the shorter side, centre crop, normalize).

Every image depends only on (seed, its index in the data set), so any subset renders identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

DEFAULT_SEED = 0
HELDOUT_FRACTION = 0.2
LABELS: tuple[str, ...] = tuple(str(digit) for digit in range(10))
MIN_SIDE, MAX_SIDE = 40, 160
MAX_ASPECT = 1.4  # longer side / shorter side
SCAN_MAX = 16.0  # the scans' ink intensity range is 0..16


@dataclass(frozen=True)
class DigitSample:
    image: np.ndarray  # uint8 (height, width, 3), RGB
    label: int
    index: int  # position in sklearn's load_digits(), the sample's stable identity


@cache
def _scans() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def render_scan(scan: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One 8x8 scan -> RGB uint8 image; size, aspect ratio, colours and noise are drawn from ``rng``."""
    shorter = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
    longer = min(MAX_SIDE, round(shorter * rng.uniform(1.0, MAX_ASPECT)))
    height, width = (longer, shorter) if rng.random() < 0.5 else (shorter, longer)
    # Bilinear upsampling in float keeps the strokes smooth rather than blocky.
    ink_map = Image.fromarray((scan / SCAN_MAX).astype(np.float32)).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    coverage = np.clip(np.asarray(ink_map, dtype=np.float32), 0.0, 1.0)[..., None]
    background = rng.uniform(190.0, 255.0, size=3).astype(np.float32)
    ink = rng.uniform(0.0, 70.0, size=3).astype(np.float32)
    pixels = background * (1.0 - coverage) + ink * coverage
    pixels += rng.normal(0.0, 4.0, size=pixels.shape).astype(np.float32)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def render_digits(seed: int = DEFAULT_SEED, indices: list[int] | None = None) -> list[DigitSample]:
    """Render the scans at ``indices`` (all 1,797 by default)."""
    scans, targets = _scans()
    chosen = range(len(scans)) if indices is None else indices
    return [
        DigitSample(render_scan(scans[i], np.random.default_rng((seed, i))), int(targets[i]), int(i))
        for i in chosen
    ]


def split_indices(seed: int = DEFAULT_SEED) -> tuple[list[int], list[int]]:
    """Stratified (train, held-out) index lists; 20% of every class is held out."""
    _, targets = _scans()
    train, heldout = train_test_split(
        np.arange(len(targets)), test_size=HELDOUT_FRACTION, stratify=targets, random_state=seed
    )
    return sorted(int(i) for i in train), sorted(int(i) for i in heldout)


def load_split(seed: int = DEFAULT_SEED) -> tuple[list[DigitSample], list[DigitSample]]:
    """(train, held-out) rendered samples; the same seed always gives the same pixels and the same split."""
    train, heldout = split_indices(seed)
    return render_digits(seed, train), render_digits(seed, heldout)
