"""PNG plots of the analysis phase: latency CDF at the common load, queueing model vs measured p99, batch x
size sweep, top operators, and the in-process stage breakdown. Each is drawn only when its data exists.

Axes are linear (a long tail is clipped, with a note, rather than put on a log scale); each variant has its
colour of ``palette.variant_colors``, and what is not a variant (stages, models) is drawn in greys.
"""

from __future__ import annotations

from itertools import cycle

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bench.analysis.queueing import MODELS, predicted_quantile_ms
from bench.records import RunRecords
from bench.records.derived import finite, servers, service_core_count, service_time_ms
from bench.records.models import OperatorProfile, Sweep
from bench.report.axes import clip_limit, outside_legend, panel_grid
from bench.report.palette import NEUTRALS, variant_colors
from bench.report.sections.inprocess import STAGES
from bench.stats import percentile

MODEL_POINTS = 24
CDF_CLIP_PERCENTILE = 99.9  # a tail far past this would squash the CDF on a linear axis: clipped
SLO_AXIS_MAX = 10.0  # the queueing plot's p99 axis stops at this many SLOs (the model curves go to infinity)
SIZE_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))  # line and marker per input size


def _finish(figure: Figure) -> Figure:
    figure.tight_layout()
    return figure


def latency_cdf_figure(run: RunRecords) -> Figure | None:
    chosen = run.info.open_loop
    runs = {name: records.open_runs for name, records in run.variants.items()}
    if chosen is None or not any(runs.values()):
        return None
    colors = variant_colors(run.names)
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    tails: list[float] = []
    maxima: list[float] = []
    for variant, found in runs.items():
        corrected = np.sort([latency for one in found for latency in one.latencies])
        service = np.sort([r.service_ms for one in found for r in one.requests if r.ok])
        if corrected.size == 0:
            continue
        color = colors[variant]
        ranks = np.arange(1, corrected.size + 1) / corrected.size
        axis.plot(corrected, ranks, color=color, label=f"{variant} (from schedule)")
        axis.plot(service, np.arange(1, service.size + 1) / service.size, color=color, linestyle=":",
                  label=f"{variant} (from actual send)")  # fmt: skip
        tails.append(percentile(corrected.tolist(), CDF_CLIP_PERCENTILE))
        maxima.append(float(corrected[-1]))
    clip = clip_limit(maxima, tails)
    axis.set_xlim(0, clip)
    note = (
        f" (axis clipped past the largest p{CDF_CLIP_PERCENTILE:g}; max {max(maxima):.0f} ms)" if clip else ""
    )
    axis.set_xlabel(f"latency ms{note}")
    axis.set_ylabel("fraction of requests")
    axis.set_title(f"Latency CDF, open loop at {chosen.rate:g} req/s")
    axis.grid(alpha=0.3)
    outside_legend(axis)
    return _finish(figure)


def queueing_figure(run: RunRecords) -> Figure | None:
    modelled = [
        records
        for records in run.variants.values()
        if finite(service_time_ms(records)) and (records.open_runs or records.slo is not None)
    ]
    if not modelled:  # the point is prediction against measurement: no open-loop data, no plot
        return None
    slo_ms = run.info.profile.slo_ms
    colors = variant_colors(run.names)
    figure, panels = panel_grid(len(modelled), 5.2, 4.2)
    for axis, records in zip(panels, modelled, strict=True):
        service_ms, count = service_time_ms(records), servers(records, service_core_count(run.info))
        capacity = count * 1000.0 / service_ms
        rates = np.linspace(0.05, 0.97, MODEL_POINTS) * capacity
        for model, color in zip(MODELS, NEUTRALS, strict=False):
            axis.plot(
                rates,
                [predicted_quantile_ms(model, r, service_ms, count) for r in rates],
                color=color,
                label=f"{model} p99",
            )
        measured = [(one.window.rate, percentile(one.latencies, 99.0)) for one in records.open_runs]
        probes = records.slo.probes if records.slo is not None else []
        measured += [(probe.rate, probe.p99_ms) for probe in probes if finite(probe.p99_ms)]
        top = min(max([2.5 * slo_ms, *(1.15 * p99 for _, p99 in measured)]), SLO_AXIS_MAX * slo_ms)
        if measured:
            axis.scatter([rate for rate, _ in measured], [min(p99, top) for _, p99 in measured],
                         color=colors[records.name], zorder=3, label=records.name)  # fmt: skip
        axis.axhline(slo_ms, color="red", linestyle="--", linewidth=1, label=f"SLO {slo_ms:g} ms")
        axis.axvline(capacity, color="grey", linestyle=":", linewidth=1, label="capacity c/S")
        axis.set_ylim(0, top)
        axis.set_xlim(left=0)
        clipped = any(p99 > top for _, p99 in measured)
        axis.set_xlabel("offered load (req/s)")
        axis.set_ylabel(
            "p99 latency ms" + (f" (clipped at {top:.0f}: points on the top edge)" if clipped else "")
        )
        axis.set_title(f"{records.name}: S = {service_ms:.1f} ms, c = {count}", color=colors[records.name])
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("Queueing model (from the measured service time) vs measured open-loop p99", fontsize=10)
    return _finish(figure)


def sweep_figure(run: RunRecords) -> Figure | None:
    sweeps = {name: r.sweep for name, r in run.variants.items() if isinstance(r.sweep, Sweep)}
    if not sweeps:
        return None
    colors = variant_colors(run.names)
    figure, axes = plt.subplots(2, len(sweeps), figsize=(max(6.4, 5.2 * len(sweeps)), 7.0), squeeze=False)
    for column, (variant, sweep) in enumerate(sweeps.items()):
        position = {batch: index for index, batch in enumerate(sweep.batch_sizes)}
        for (height, width), (style, marker) in zip(sweep.image_sizes, cycle(SIZE_STYLES), strict=False):
            cells = [c for c in sweep.cells if (c.height, c.width) == (height, width)]
            xs = [position[c.batch] for c in cells]
            look = {
                "marker": marker,
                "color": colors[variant],
                "linestyle": style,
                "label": f"{width}x{height}",
            }
            axes[0][column].plot(xs, [c.images_per_s for c in cells], **look)
            axes[1][column].plot(xs, [c.latency_per_image_ms for c in cells], **look)
        for row, ylabel in ((0, "images/s"), (1, "latency per image ms")):
            axis = axes[row][column]
            axis.set_xticks(range(len(sweep.batch_sizes)), [str(b) for b in sweep.batch_sizes])
            axis.set_xlabel("batch size")
            axis.set_ylabel(ylabel)
            axis.set_ylim(bottom=0)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8, title="input size")
        axes[0][column].set_title(
            f"{variant} ({sweep.runtime}, {sweep.threads} thread(s))", color=colors[variant]
        )
    figure.suptitle("In-process sweep: batch size x input image size (decode excluded)", fontsize=10)
    return _finish(figure)


def operators_figure(run: RunRecords) -> Figure | None:
    profiles = {
        name: r.operator_profile
        for name, r in run.variants.items()
        if isinstance(r.operator_profile, OperatorProfile)
    }
    if not profiles:
        return None
    colors = variant_colors(run.names)
    figure, panels = panel_grid(len(profiles), 6.0, 4.6)
    for axis, (variant, profile) in zip(panels, profiles.items(), strict=True):
        top = profile.top[:10][::-1]
        axis.barh([op.operator for op in top], [op.total_ms_per_call for op in top], color=colors[variant],
                  label=variant)  # fmt: skip
        axis.set_xlabel("ms per predict call")
        axis.set_title(f"{variant}: {profile.profiler}", fontsize=9)
        axis.tick_params(axis="y", labelsize=7)
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle("Top operators (preprocessing + model)")
    return _finish(figure)


def stages_figure(run: RunRecords) -> Figure | None:
    means: dict[str, list[float]] = {}
    for variant, records in run.variants.items():
        measured = records.measured_ceilings()
        if measured:
            means[variant] = [float(np.median([c.stages_ms[s] for c in measured])) for s in STAGES]
    if not means:
        return None
    colors = variant_colors(run.names)
    figure, axis = plt.subplots(figsize=(max(6.4, 0.9 * len(means)), 4.2))
    bottoms = [0.0] * len(means)
    edges = [colors[variant] for variant in means]
    for index, shade in enumerate(NEUTRALS[: len(STAGES)]):
        heights = [values[index] for values in means.values()]
        axis.bar(list(means), heights, bottom=bottoms, color=shade, edgecolor=edges, linewidth=2)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    for tick, variant in zip(axis.get_xticklabels(), means, strict=True):
        tick.set_color(colors[variant])
    axis.tick_params(axis="x", labelrotation=30 if len(means) > 5 else 0)
    axis.set_ylabel("ms per request (mean, median of repeats)")
    axis.set_title("In-process stage breakdown (outline: the variant's colour)")
    handles = [
        Patch(facecolor=shade, edgecolor="black", label=stage)
        for stage, shade in zip(STAGES, NEUTRALS, strict=True)
    ]
    outside_legend(axis, handles=handles)
    axis.grid(axis="y", alpha=0.3)
    return _finish(figure)


def analysis_figures(run: RunRecords) -> dict[str, Figure]:
    """The analysis plots whose data exists, by file stem; the caller closes them."""
    drawn = {
        "stages": stages_figure(run),
        "latency_cdf_open_loop": latency_cdf_figure(run),
        "queueing_model": queueing_figure(run),
        "sweep": sweep_figure(run),
        "top_operators": operators_figure(run),
    }
    return {name: figure for name, figure in drawn.items() if figure is not None}
