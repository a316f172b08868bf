"""PNG plots of the analysis phase: latency CDF at the common load, queueing model vs measured p99, batch x
size sweep, top operators, and the in-process stage breakdown. Each is drawn only when its data exists.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from bench.analysis.queueing import MODELS, predicted_quantile_ms
from bench.records import RunRecords
from bench.records.derived import finite, servers, service_time_ms
from bench.records.models import OperatorProfile, Sweep
from bench.report.sections.inprocess import STAGES
from bench.stats import percentile

MODEL_POINTS = 24


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def latency_cdf_plot(run: RunRecords, path: Path) -> Path | None:
    chosen = run.info.open_loop
    runs = {name: records.open_runs for name, records in run.variants.items()}
    if chosen is None or not any(runs.values()):
        return None
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for index, (variant, found) in enumerate(runs.items()):
        corrected = np.sort([latency for one in found for latency in one.latencies])
        service = np.sort([r.service_ms for one in found for r in one.requests if r.ok])
        if corrected.size == 0:
            continue
        color = f"C{index}"
        ranks = np.arange(1, corrected.size + 1) / corrected.size
        axis.plot(corrected, ranks, color=color, label=f"{variant} (from schedule)")
        axis.plot(service, np.arange(1, service.size + 1) / service.size, color=color, linestyle=":",
                  label=f"{variant} (from actual send)")  # fmt: skip
    axis.set_xscale("log")
    axis.set_xlabel("latency ms")
    axis.set_ylabel("fraction of requests")
    axis.set_title(f"Latency CDF, open loop at {chosen.rate:g} req/s")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def queueing_plot(run: RunRecords, path: Path) -> Path | None:
    modelled = [
        records
        for records in run.variants.values()
        if finite(service_time_ms(records)) and (records.open_runs or records.slo is not None)
    ]
    if not modelled:  # the point is prediction against measurement: no open-loop data, no plot
        return None
    slo_ms = run.info.profile.slo_ms
    figure, axes = plt.subplots(1, len(modelled), figsize=(5.2 * len(modelled), 4.2), squeeze=False)
    for axis, records in zip(axes[0], modelled, strict=True):
        service_ms, count = service_time_ms(records), servers(records)
        capacity = count * 1000.0 / service_ms
        rates = np.linspace(0.05, 0.97, MODEL_POINTS) * capacity
        for model in MODELS:
            axis.plot(
                rates,
                [predicted_quantile_ms(model, r, service_ms, count) for r in rates],
                label=f"{model} p99",
            )
        measured = [(one.window.rate, percentile(one.latencies, 99.0)) for one in records.open_runs]
        probes = records.slo.probes if records.slo is not None else []
        measured += [(probe.rate, probe.p99_ms) for probe in probes if finite(probe.p99_ms)]
        if measured:
            axis.scatter(
                *zip(*measured, strict=True), color="black", zorder=3, label="measured open-loop p99"
            )
        axis.axhline(slo_ms, color="red", linestyle="--", linewidth=1, label=f"SLO {slo_ms:g} ms")
        axis.axvline(capacity, color="grey", linestyle=":", linewidth=1, label="capacity c/S")
        axis.set_yscale("log")
        axis.set_xlabel("offered load (req/s)")
        axis.set_ylabel("p99 latency ms")
        axis.set_title(f"{records.name}: S = {service_ms:.1f} ms, c = {count}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle("Queueing model (from the measured service time) vs measured p99")
    return _save(figure, path)


def sweep_plot(run: RunRecords, path: Path) -> Path | None:
    sweeps = {name: r.sweep for name, r in run.variants.items() if isinstance(r.sweep, Sweep)}
    if not sweeps:
        return None
    figure, axes = plt.subplots(2, len(sweeps), figsize=(5.2 * len(sweeps), 7.0), squeeze=False)
    for column, (variant, sweep) in enumerate(sweeps.items()):
        for height, width in sweep.image_sizes:
            cells = [c for c in sweep.cells if (c.height, c.width) == (height, width)]
            batches = [c.batch for c in cells]
            label = f"{width}x{height}"
            axes[0][column].plot(batches, [c.images_per_s for c in cells], marker="o", label=label)
            axes[1][column].plot(batches, [c.latency_per_image_ms for c in cells], marker="o", label=label)
        for row, ylabel in ((0, "images/s"), (1, "latency per image ms")):
            axis = axes[row][column]
            axis.set_xscale("log", base=2)
            axis.set_xticks(sweep.batch_sizes, [str(b) for b in sweep.batch_sizes])
            axis.set_xlabel("batch size")
            axis.set_ylabel(ylabel)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8, title="input size")
        axes[0][column].set_title(f"{variant} ({sweep.runtime}, {sweep.threads} thread(s))")
    figure.suptitle("In-process sweep: batch size x input image size (decode excluded)")
    return _save(figure, path)


def operators_plot(run: RunRecords, path: Path) -> Path | None:
    profiles = {
        name: r.operator_profile
        for name, r in run.variants.items()
        if isinstance(r.operator_profile, OperatorProfile)
    }
    if not profiles:
        return None
    figure, axes = plt.subplots(1, len(profiles), figsize=(6.0 * len(profiles), 4.6), squeeze=False)
    for axis, (variant, profile) in zip(axes[0], profiles.items(), strict=True):
        top = profile.top[:10][::-1]
        axis.barh([op.operator for op in top], [op.total_ms_per_call for op in top])
        axis.set_xlabel("ms per predict call")
        axis.set_title(f"{variant}: {profile.profiler}", fontsize=9)
        axis.tick_params(axis="y", labelsize=7)
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle("Top operators (preprocessing + model)")
    return _save(figure, path)


def stages_plot(run: RunRecords, path: Path) -> Path | None:
    means: dict[str, list[float]] = {}
    for variant, records in run.variants.items():
        measured = records.measured_ceilings()
        if measured:
            means[variant] = [float(np.median([c.stages_ms[s] for c in measured])) for s in STAGES]
    if not means:
        return None
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    bottoms = [0.0] * len(means)
    for index, stage in enumerate(STAGES):
        heights = [values[index] for values in means.values()]
        axis.bar(list(means), heights, bottom=bottoms, label=stage)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    axis.set_ylabel("ms per request (mean, median of repeats)")
    axis.set_title("In-process stage breakdown")
    axis.legend()
    axis.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def write_analysis_plots(run: RunRecords, plots_dir: Path) -> list[Path]:
    drawn = [
        stages_plot(run, plots_dir / "stages.png"),
        latency_cdf_plot(run, plots_dir / "latency_cdf_open_loop.png"),
        queueing_plot(run, plots_dir / "queueing_model.png"),
        sweep_plot(run, plots_dir / "sweep.png"),
        operators_plot(run, plots_dir / "top_operators.png"),
    ]
    return [path for path in drawn if path is not None]
