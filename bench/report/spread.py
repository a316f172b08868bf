"""Repeat spread as a check: a throughput row whose repeats spread more than SPREAD_LIMIT is flagged, with
the likely cause the records show (every variant slowed in the same repeat, the machine's own calibration
slower before some repeats, the host's CPU steal, the generator saturated, a busy machine at start, two
speeds per process).
"""

from __future__ import annotations

import math
import re

import numpy as np

from bench.load.spec import GENERATOR_SATURATION_PERCENT
from bench.records import RunRecords, VariantRecords
from bench.records.models import LoadWindow
from bench.report.flags import FlagCode, ReportFlag, Severity
from bench.report.machine import calibration_cause, steal_cause
from bench.report.table import Row
from bench.stats import relative_spread, two_groups, two_modes

SPREAD_LIMIT = 0.10  # (max - min) / median of a throughput row's repeats beyond which the row is flagged
BUSY_LOAD_PER_CORE = 0.5  # load average at start per logical core: other work held half the machine
NO_CAUSE = "cause not visible in the records"
TWO_SPEEDS = "two speeds per process"
MACHINE_WIDE = "machine-wide slowdown"
# The other variants' own repeats must move by at least this much for a shared slowdown to be a cause.
MACHINE_SHIFT_MIN = SPREAD_LIMIT / 2


def _measured_runs(records: VariantRecords, key: str) -> list[tuple[int, LoadWindow, list[float]]]:
    """(repeat, window, latencies) of the load runs behind a throughput row: closed levels or open runs."""
    closed = re.fullmatch(r"c(\d+)\.rps", key)
    if closed:
        return [(level.repeat, level.window, level.latencies) for level in records.at(int(closed.group(1)))]
    if key == "open.rps":
        return [(run.repeat, run.window, run.latencies) for run in records.open_runs]
    return []


def _by_repeat(records: VariantRecords, key: str, values: list[float]) -> dict[int, float]:
    """A row's values keyed by their repeat (the sections list them in the records' order)."""
    runs = _measured_runs(records, key)
    if len(runs) != len(values):
        return {}
    return {repeat: value for (repeat, _, _), value in zip(runs, values, strict=True)}


def machine_factors(run: RunRecords, row: Row, variant: str) -> dict[int, float]:
    """Per repeat, how fast the machine ran for the other variants of the run: the median over them of each
    one's value in that repeat divided by its own median. The bench runs repeat r of every variant before
    repeat r + 1 of any, so a slowdown of the machine (a neighbour, the host) shows in all of them at once."""
    shares: dict[int, list[float]] = {}
    for name, cell in row.cells.items():
        if name == variant or name not in run.variants:
            continue
        values = _by_repeat(run.variants[name], row.key, cell.values)
        middle = float(np.median(list(values.values()))) if len(values) >= 2 else 0.0
        for repeat, value in values.items() if middle > 0 else ():
            shares.setdefault(repeat, []).append(value / middle)
    return {repeat: float(np.median(found)) for repeat, found in sorted(shares.items())}


def machine_wide_cause(
    run: RunRecords, row: Row, variant: str, values: list[float]
) -> tuple[str, str] | None:
    """A machine-wide slowdown, when the other variants moved by repeat as this one did: divided by their
    per-repeat factor, this row's values agree within SPREAD_LIMIT."""
    factors = machine_factors(run, row, variant)
    mine = _by_repeat(run.variants[variant], row.key, values)
    shared = sorted(set(factors) & set(mine))
    if len(shared) < 2:
        return None
    shift = (max(factors[r] for r in shared) - min(factors[r] for r in shared)) / float(
        np.median([factors[r] for r in shared])
    )
    corrected = [mine[r] / factors[r] for r in shared]
    residual = (max(corrected) - min(corrected)) / float(np.median(corrected))
    if shift < MACHINE_SHIFT_MIN or residual > SPREAD_LIMIT:
        return None
    slowest = min(shared, key=lambda repeat: factors[repeat])
    slower = 1 - factors[slowest] / max(factors[r] for r in shared)
    return (
        f"{MACHINE_WIDE}: the other variants ran {slower:.0%} slower in repeat {slowest} too; divided by"
        f" their per-repeat factor this row spreads {residual:.0%}",
        MACHINE_WIDE,
    )


def spread_causes(
    run: RunRecords, records: VariantRecords, key: str, values: list[float], row: Row | None = None
) -> list[tuple[str, str]]:
    """(what the records show, its short name) for each likely cause of a row's spread (none: NO_CAUSE)."""
    causes: list[tuple[str, str]] = []
    shared = machine_wide_cause(run, row, records.name, values) if row is not None else None
    if shared is not None:
        causes.append(shared)
    runs = _measured_runs(records, key)
    if re.fullmatch(r"c\d+\.rps", key):  # the calibrations run before the load repeats, not the open runs
        calibration = calibration_cause(records, [repeat for repeat, _, _ in runs])
        if calibration is not None:
            causes.append(calibration)
    steals = [(repeat, window.host_steal_percent) for repeat, window, _ in runs]
    stolen = steal_cause([(repeat, steal) for repeat, steal in steals if math.isfinite(steal)])
    if stolen is not None:
        causes.append(stolen)
    saturated = [
        f"repeat {repeat} at {window.generator_cpu_percent:.0f}%"
        for repeat, window, _ in runs
        if window.generator_saturated or window.generator_cpu_percent >= GENERATOR_SATURATION_PERCENT
    ]
    if saturated:
        causes.append(
            (
                f"load generator saturated (its CPU {', '.join(saturated)},"
                f" >= {GENERATOR_SATURATION_PERCENT:.0f}% limits the load)",
                "load generator saturated",
            )
        )
    sysinfo = run.info.sysinfo
    load, cores = sysinfo.load_average_1m_at_start, sysinfo.logical_cores
    if cores and math.isfinite(load) and load >= BUSY_LOAD_PER_CORE * cores:
        causes.append(
            (f"machine busy at start (load average {load:.2f} on {cores} cores)", "machine busy at start")
        )
    for repeat, _, latencies in runs:
        modes = two_modes(latencies)
        if modes is not None:
            causes.append(
                (
                    f"two speeds per process: repeat {repeat}'s latencies split into modes of"
                    f" {modes.low:.1f} and {modes.high:.1f} ms ({modes.high_fraction:.0%} slow,"
                    f" Ashman's D {modes.separation:.1f})",
                    TWO_SPEEDS,
                )
            )
            break
    groups = two_groups(values)
    if groups is not None:
        low, high = groups
        causes.append(
            (
                f"two speeds per process: repeats cluster in two groups ({low[0]:.3g}-{low[-1]:.3g}"
                f" and {high[0]:.3g}-{high[-1]:.3g})",
                TWO_SPEEDS,
            )
        )
    return causes or [(NO_CAUSE, NO_CAUSE)]


def _throughput_row(row: Row) -> bool:
    return row.unit == "req/s" and row.better == "higher"


def spread_flags(run: RunRecords, rows: list[Row]) -> list[ReportFlag]:
    """A warning per throughput cell whose repeats spread more than SPREAD_LIMIT, naming the likely cause."""
    found = []
    for row in filter(_throughput_row, rows):
        for variant, cell in row.cells.items():
            spread = relative_spread(cell.summary) if cell.summary is not None else math.nan
            if not spread > SPREAD_LIMIT or variant not in run.variants:
                continue
            summary = cell.summary
            assert summary is not None
            causes = spread_causes(run, run.variants[variant], row.key, cell.values, row)
            message = (
                f"{row.label} ({row.key}): repeats spread {spread:.0%} > {SPREAD_LIMIT:.0%}"
                f" ({summary.low:.3g}-{summary.high:.3g} {row.unit}, n={summary.n}); likely cause: "
                + "; ".join(text for text, _ in causes)
            )
            short = f"{row.key.removesuffix('.rps')} repeats spread {spread:.0%}: " + "; ".join(
                name for _, name in causes
            )
            found.append(
                ReportFlag(
                    FlagCode.REPEAT_SPREAD, Severity.WARNING, variant, message, row.section, row.key, short
                )
            )
    return found
