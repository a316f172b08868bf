"""Plain axes shared by every plot: concurrency levels as categorical ticks, linear axes clipped (with a note)
instead of log scales when one value would squash the rest."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

CLIP_RATIO = 3.0  # a value this many times the rest's largest is clipped (and said so), not drawn to scale


def level_axis(axis: Axes, levels: Sequence[int], label: str = "concurrent users (closed loop)") -> None:
    """Concurrency on a categorical x axis: one evenly spaced tick per level measured, labelled with it."""
    axis.set_xticks(range(len(levels)), [str(users) for users in levels])
    axis.set_xlim(-0.5, len(levels) - 0.5)
    axis.set_xlabel(label)


def clip_limit(values: Sequence[float], keep: Sequence[float]) -> float | None:
    """The top of a linear axis clipping outliers: 1.15 x the largest of ``keep`` when some value exceeds
    CLIP_RATIO times that; None when nothing needs clipping."""
    drawn = [value for value in values if math.isfinite(value)]
    kept = [value for value in keep if math.isfinite(value) and value > 0]
    if not drawn or not kept or max(drawn) <= CLIP_RATIO * max(kept):
        return None
    return 1.15 * max(kept)


def outside_legend(axis: Axes, **options: object) -> None:
    """The legend right of the axes, where it covers no data however many variants there are."""
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, **options)  # type: ignore[arg-type]


def panel_grid(count: int, width: float, height: float, columns: int = 3) -> tuple[Figure, list[Axes]]:
    """One panel per variant, at most ``columns`` a row (7+ variants stay legible); spares removed."""
    across = max(1, min(columns, count))
    down = max(1, math.ceil(count / across))
    figure, grid = plt.subplots(
        down, across, figsize=(max(6.4, width * across), height * down), squeeze=False
    )
    panels = [axis for row in grid for axis in row]
    for spare in panels[count:]:
        spare.remove()
    return figure, panels[:count]
