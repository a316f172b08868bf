"""One colour per variant, the same on every plot: taken from the run's variant order (run.json)."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

from matplotlib import colormaps
from matplotlib.colors import to_hex

# Greys for what is not a variant (stages, models), so no variant's colour means something else.
NEUTRALS = ("#4d4d4d", "#8c8c8c", "#bdbdbd", "#e0e0e0")


def variant_colors(variants: Sequence[str]) -> dict[str, str]:
    """Variant -> hex colour by run position: tab10 up to 10 variants, tab20 up to 20, then spaced hues."""
    count = len(variants)
    if count <= 10:
        colors = [to_hex(colormaps["tab10"](index)) for index in range(count)]
    elif count <= 20:
        # tab20 pairs a strong and a light tone: the strong ones first keeps neighbours apart.
        order = [*range(0, 20, 2), *range(1, 20, 2)]
        colors = [to_hex(colormaps["tab20"](index)) for index in order[:count]]
    else:
        colors = [to_hex(colorsys.hsv_to_rgb(index / count, 0.75, 0.8)) for index in range(count)]
    return dict(zip(variants, colors, strict=True))
