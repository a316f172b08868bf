"""PNG plots of a table: throughput vs concurrency, latency percentiles per level, startup distribution."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.records import RunRecords
from bench.report.analysis_plots import write_analysis_plots
from bench.report.table import Table
from bench.results import RunDir
from bench.stats import LATENCY_PERCENTILES


def _levels(table: Table) -> list[int]:
    return list(table.run["profile"]["concurrency_levels"])


def throughput_plot(table: Table, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    levels = _levels(table)
    for variant in table.variants:
        cells = [table.row(f"c{users}.rps").cells[variant] for users in levels]
        medians = [cell.median for cell in cells]
        low = [cell.median - cell.summary.low if cell.summary and cell.summary.n else 0 for cell in cells]
        high = [cell.summary.high - cell.median if cell.summary and cell.summary.n else 0 for cell in cells]
        axis.errorbar(levels, medians, yerr=[low, high], marker="o", capsize=4, label=variant)
    axis.set_xscale("log")
    axis.set_xticks(levels, [str(users) for users in levels])
    axis.set_xlabel("concurrent users (closed loop)")
    axis.set_ylabel("successful requests/s (median, min-max)")
    axis.set_title("Throughput vs concurrency")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def latency_plot(table: Table, path: Path) -> Path:
    levels = _levels(table)
    labels = [label for label, _ in LATENCY_PERCENTILES] + ["max"]
    figure, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 4.0), squeeze=False)
    width = 0.8 / max(len(table.variants), 1)
    for axis, users in zip(axes[0], levels, strict=True):
        for index, variant in enumerate(table.variants):
            values = [table.row(f"c{users}.{label}").cells[variant].median for label in labels]
            positions = [x + index * width for x in range(len(labels))]
            axis.bar(positions, [0 if math.isnan(v) else v for v in values], width=width, label=variant)
        axis.set_xticks([x + width * (len(table.variants) - 1) / 2 for x in range(len(labels))], labels)
        axis.set_yscale("log")
        axis.set_title(f"{users} users")
        axis.set_ylabel("latency ms (median of repeats)")
        axis.grid(axis="y", alpha=0.3)
    axes[0][0].legend()
    figure.suptitle("Latency percentiles")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def startup_plot(table: Table, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    cells = table.row("startup.ready_s").cells
    measured = [variant for variant in table.variants if cells[variant].values]
    if measured:
        axis.boxplot([cells[variant].values for variant in measured], tick_labels=measured, showfliers=False)
        for index, variant in enumerate(measured, start=1):
            values = cells[variant].values
            axis.scatter([index] * len(values), values, alpha=0.6, zorder=3)
    else:
        axis.text(0.5, 0.5, "no startup measured", ha="center", transform=axis.transAxes)
    axis.set_ylabel("spawn -> /ready 200 (s)")
    axis.set_title("Startup time distribution")
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_plots(table: Table, run: RunRecords, run_dir: RunDir) -> list[Path]:
    run_dir.plots_dir.mkdir(parents=True, exist_ok=True)
    return [
        throughput_plot(table, run_dir.plots_dir / "throughput.png"),
        latency_plot(table, run_dir.plots_dir / "latency_percentiles.png"),
        startup_plot(table, run_dir.plots_dir / "startup.png"),
        *write_analysis_plots(run, run_dir.plots_dir),
    ]
