"""PNG plots of a table: the glance chart (throughput vs p99 per variant), throughput vs concurrency, latency
percentiles per level, startup distribution; then the analysis plots (``analysis_plots``).

Every figure is built by a function returning it (the tests inspect the axes), and drawn with plain linear
axes: concurrency levels as categorical ticks of exactly the levels measured, latencies in ms. A variant has
one colour on every plot (``palette.variant_colors``, from the run's variant order).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from bench.records import RunRecords
from bench.report.analysis_plots import analysis_figures
from bench.report.axes import clip_limit, level_axis, outside_legend
from bench.report.layout import GLANCE
from bench.report.palette import variant_colors
from bench.report.table import Cell, Table
from bench.report.verdict import build_verdict
from bench.results import RunDir
from bench.stats import LATENCY_PERCENTILES

DPI = 110


def _levels(table: Table) -> list[int]:
    keys = {row.key for row in table.rows}
    return [users for users in table.run["profile"]["concurrency_levels"] if f"c{users}.rps" in keys]


def _median(table: Table, key: str, variant: str) -> float:
    cell = table.row(key).cells[variant]
    return cell.median if cell.summary is not None and cell.summary.n else math.nan


def glance_figure(table: Table) -> Figure:
    """Throughput (x) vs p99 (y) per variant, one line through its concurrency levels, points labelled."""
    colors = variant_colors(table.variants)
    levels = _levels(table)
    figure, axis = plt.subplots(figsize=(8.4, 4.8))
    ranked = [row.variant for row in build_verdict(table).rows]
    plotted: list[tuple[float, float]] = []
    for variant in ranked:
        points = [
            (users, _median(table, f"c{users}.rps", variant), _median(table, f"c{users}.p99", variant))
            for users in levels
        ]
        points = [point for point in points if math.isfinite(point[1]) and math.isfinite(point[2])]
        if not points:
            continue
        xs, ys = [x for _, x, _ in points], [y for _, _, y in points]
        plotted += list(zip(xs, ys, strict=True))
        axis.plot(xs, ys, marker="o", color=colors[variant], label=variant)
        for users, x, y in points:
            axis.annotate(f"c{users}", (x, y), xytext=(5, 4), textcoords="offset points", fontsize=8,
                          color=colors[variant])  # fmt: skip
    slo_ms = float(table.run["profile"].get("slo_ms") or math.nan)
    if not plotted:
        axis.text(0.5, 0.5, "no closed-loop level measured", ha="center", transform=axis.transAxes)
    else:
        outside_legend(axis, title="best first", title_fontsize=8)
        top = max(y for _, y in plotted)
        axis.set_xlim(0, 1.12 * max(x for x, _ in plotted))  # room for the level labels
        axis.set_ylim(0, 1.12 * top)
        if math.isfinite(slo_ms) and slo_ms <= 1.12 * top:
            axis.axhline(slo_ms, color="red", linestyle="--", linewidth=1)
            axis.annotate(f"SLO p99 {slo_ms:g} ms", (0, slo_ms), xytext=(4, 3), textcoords="offset points",
                          fontsize=8, color="red")  # fmt: skip
    axis.set_xlabel("successful requests/s (closed loop, median of repeats): further right is better")
    axis.set_ylabel("latency p99 ms: lower is better")
    axis.set_title("At a glance: throughput vs p99 per concurrency level")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def _error(cell: Cell) -> tuple[float, float]:
    if cell.summary is None or not cell.summary.n:
        return 0.0, 0.0
    return cell.median - cell.summary.low, cell.summary.high - cell.median


def throughput_figure(table: Table) -> Figure:
    colors = variant_colors(table.variants)
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    levels = _levels(table)
    for variant in table.variants:
        cells = [table.row(f"c{users}.rps").cells[variant] for users in levels]
        errors = [_error(cell) for cell in cells]
        axis.errorbar(range(len(levels)), [cell.median for cell in cells],
                      yerr=[[low for low, _ in errors], [high for _, high in errors]],
                      marker="o", capsize=4, color=colors[variant], label=variant)  # fmt: skip
    level_axis(axis, levels)
    axis.set_ylim(bottom=0)
    axis.set_ylabel("successful requests/s (median, min-max)")
    axis.set_title("Throughput vs concurrency")
    axis.grid(alpha=0.3)
    outside_legend(axis)
    figure.tight_layout()
    return figure


def latency_figure(table: Table) -> Figure:
    colors = variant_colors(table.variants)
    levels = _levels(table)
    labels = [label for label, _ in LATENCY_PERCENTILES] + ["max"]
    values = {
        (users, variant): [_median(table, f"c{users}.{label}", variant) for label in labels]
        for users in levels
        for variant in table.variants
    }
    everything = [value for figures in values.values() for value in figures]
    top = clip_limit(everything, [value for figures in values.values() for value in figures[:-1]])
    figure, axes = plt.subplots(
        1, max(len(levels), 1), figsize=(4.2 * max(len(levels), 1), 4.2), squeeze=False
    )
    width = 0.8 / max(len(table.variants), 1)
    for axis, users in zip(axes[0], levels, strict=False):
        for index, variant in enumerate(table.variants):
            heights = values[(users, variant)]
            positions = [x + index * width for x in range(len(labels))]
            shown = [0.0 if math.isnan(v) else (min(v, top) if top else v) for v in heights]
            axis.bar(positions, shown, width=width, color=colors[variant], label=variant)
            for x, value in zip(positions, heights, strict=True):
                if top is not None and value > top:
                    axis.annotate(f"{value:.0f}", (x, top), xytext=(0, -2), textcoords="offset points",
                                  ha="center", va="top", fontsize=7, rotation=90)  # fmt: skip
        axis.set_xticks([x + width * (len(table.variants) - 1) / 2 for x in range(len(labels))], labels)
        if top is not None:
            axis.set_ylim(0, top)
        axis.set_title(f"concurrency {users}")
        axis.set_ylabel("latency ms (median of repeats)")
        axis.grid(axis="y", alpha=0.3)
    outside_legend(axes[0][-1])
    note = " (axis clipped: taller bars carry their value)" if top is not None else ""
    figure.suptitle(f"Latency percentiles{note}")
    figure.tight_layout()
    return figure


def startup_figure(table: Table) -> Figure:
    colors = variant_colors(table.variants)
    figure, axis = plt.subplots(figsize=(max(6.4, 0.9 * len(table.variants)), 4.0))
    cells = table.row("startup.ready_s").cells
    measured = [variant for variant in table.variants if cells[variant].values]
    if measured:
        axis.boxplot([cells[variant].values for variant in measured], tick_labels=measured, showfliers=False,
                     medianprops={"color": "black"})  # fmt: skip
        for index, variant in enumerate(measured, start=1):
            values = cells[variant].values
            axis.scatter(
                [index] * len(values), values, alpha=0.7, zorder=3, color=colors[variant], label=variant
            )
        axis.tick_params(axis="x", labelrotation=30 if len(measured) > 5 else 0)
        axis.set_ylim(bottom=0)
    else:
        axis.text(0.5, 0.5, "no startup measured", ha="center", transform=axis.transAxes)
    axis.set_ylabel("spawn -> /ready 200 (s)")
    axis.set_title("Startup time distribution")
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def report_figures(table: Table, run: RunRecords) -> dict[str, Figure]:
    """Every plot of the report by file stem, the glance chart first; the caller closes them."""
    figures = {
        GLANCE: glance_figure(table),
        "throughput": throughput_figure(table),
        "latency_percentiles": latency_figure(table),
        "startup": startup_figure(table),
    }
    return figures | analysis_figures(run)


def write_plots(table: Table, run: RunRecords, run_dir: RunDir) -> list[Path]:
    run_dir.plots_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in report_figures(table, run).items():
        path = run_dir.plots_dir / f"{name}.png"
        figure.savefig(path, dpi=DPI)
        plt.close(figure)
        written.append(path)
    return written
