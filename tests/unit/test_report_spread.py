"""Repeat spread as a first-class check: a throughput row whose repeats spread more than 10% is flagged with
the cause the records show (generator saturated, machine busy at start, two speeds per process), or with
"cause not visible in the records"; a tight row is not flagged. Records are constructed, not measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.records import RunRecords, VariantRecords
from bench.records.models import LoadLevel, LoadWindow, RunInfo
from bench.report.flags import FlagCode, ReportFlag
from bench.report.spread import NO_CAUSE, spread_flags
from bench.report.table import Cell, Row, Table, tabulate
from bench.report.verdict import build_verdict
from bench.stats import Spread, relative_spread, two_groups, two_modes


def _level(repeat: int, rps: float, latencies: list[float], generator_cpu: float = 40.0) -> LoadLevel:
    window = LoadWindow(duration_s=10.0, successes=int(rps * 10), generator_cpu_percent=generator_cpu,
                        generator_saturated=generator_cpu >= 90.0)  # fmt: skip
    return LoadLevel(repeat=repeat, users=8, window=window, latencies=latencies)


def _steady_latencies(seed: int, median_ms: float = 40.0) -> list[float]:
    return np.exp(np.random.default_rng(seed).normal(np.log(median_ms), 0.05, 200)).tolist()


def _run(levels: list[LoadLevel], load: float = 0.1, cores: int = 2) -> RunRecords:
    info = RunInfo.model_validate(
        {"profile": {"concurrency_levels": [8], "repeats": len(levels)}, "baseline": "a",
         "sysinfo": {"logical_cores": cores, "load_average_1m_at_start": load}, "variants": [{"name": "a"}]}
    )  # fmt: skip
    return RunRecords(Path(), info, {"a": VariantRecords("a", levels=levels)}, [], info.model_dump())


def _flags(run: RunRecords) -> list[ReportFlag]:
    values = [level.window.throughput_rps for level in run.variants["a"].levels]
    rows = [Row("closed loop, concurrency 8", "c8.rps", "successful requests/s", "req/s", "higher",
                {"a": Cell(values=values)})]  # fmt: skip
    tabulate(rows, ["a"], "a")
    return spread_flags(run, rows)


def test_a_tight_row_has_no_flag() -> None:
    run = _run([_level(r, rps, _steady_latencies(r)) for r, rps in enumerate([20.0, 20.5, 21.0])], load=3.0)
    assert _flags(run) == []


def test_a_spread_row_without_visible_cause_says_so() -> None:
    run = _run([_level(0, 20.0, _steady_latencies(0)), _level(1, 25.0, _steady_latencies(1))])
    [flag] = _flags(run)
    assert flag.code is FlagCode.REPEAT_SPREAD and flag.variant == "a" and flag.row == "c8.rps"
    assert "repeats spread 22% > 10% (20-25 req/s, n=2)" in flag.message
    assert flag.message.endswith(f"likely cause: {NO_CAUSE}")


def test_a_saturated_generator_is_named() -> None:
    run = _run([_level(0, 20.0, _steady_latencies(0), 97.0), _level(1, 25.0, _steady_latencies(1))])
    [flag] = _flags(run)
    assert "likely cause: load generator saturated (its CPU repeat 0 at 97%" in flag.message
    assert NO_CAUSE not in flag.message


def test_a_busy_machine_at_start_is_named() -> None:
    run = _run([_level(0, 20.0, _steady_latencies(0)), _level(1, 25.0, _steady_latencies(1))], load=1.5)
    [flag] = _flags(run)
    assert "machine busy at start (load average 1.50 on 2 cores)" in flag.message


def test_two_speeds_in_one_process_are_named() -> None:
    two_speeds = _steady_latencies(0, 20.0)[:120] + _steady_latencies(1, 45.0)[:80]
    run = _run([_level(0, 20.0, two_speeds), _level(1, 25.0, _steady_latencies(2))])
    [flag] = _flags(run)
    assert "two speeds per process: repeat 0's latencies split into modes of 20" in flag.message
    assert "and 45" in flag.message and "(40% slow" in flag.message


def test_repeats_clustering_in_two_groups_are_named() -> None:
    rates = [20.0, 20.2, 24.8, 25.0]
    run = _run([_level(r, rps, _steady_latencies(r)) for r, rps in enumerate(rates)])
    [flag] = _flags(run)
    assert "two speeds per process: repeats cluster in two groups (20-20.2 and 24.8-25)" in flag.message


def test_the_verdict_line_carries_the_spread_flag_with_its_cause() -> None:
    run = _run([_level(0, 20.0, _steady_latencies(0), 97.0), _level(1, 25.0, _steady_latencies(1))])
    rows = [
        Row("closed", "c8.rps", "successful requests/s", "req/s", "higher", {"a": Cell(values=[20.0, 25.0])})
    ]
    frame = tabulate(rows, ["a"], "a")
    run_json = {"profile": {"concurrency_levels": [8], "slo_ms": 100.0}, "sysinfo": {}, "variants": []}
    table = Table(["a"], "a", rows, [], run_json, spread_flags(run, rows), frame)
    assert build_verdict(table).rows[0].flags == ("c8 repeats spread 22%: load generator saturated",)


def test_the_statistics_behind_the_causes() -> None:
    assert relative_spread(Spread(20.0, 18.0, 22.0, 3)) == 0.2
    assert np.isnan(relative_spread(Spread(20.0, 20.0, 20.0, 1)))
    assert two_modes(_steady_latencies(3)) is None  # one speed, however the split is chosen
    assert two_modes([10.0] * 5) is None  # too few to tell
    assert two_groups([20.0, 21.0, 22.0, 23.0]) is None  # evenly spread, not two groups
    assert two_groups([20.0, 25.0]) is None  # two repeats cannot show a cluster


def _two_variant_flags(a_rps: list[float], b_rps: list[float]) -> list[ReportFlag]:
    """Variants a and b, their repeats interleaved as the bench runs them."""
    variants = {
        name: VariantRecords(
            name, levels=[_level(r, rps, _steady_latencies(r)) for r, rps in enumerate(values)]
        )
        for name, values in (("a", a_rps), ("b", b_rps))
    }
    info = RunInfo.model_validate(
        {"profile": {"concurrency_levels": [8], "repeats": len(a_rps)}, "baseline": "a",
         "sysinfo": {"logical_cores": 2, "load_average_1m_at_start": 0.1},
         "variants": [{"name": "a"}, {"name": "b"}]}
    )  # fmt: skip
    run = RunRecords(Path(), info, variants, [], info.model_dump())
    cells = {name: Cell(values=values) for name, values in (("a", a_rps), ("b", b_rps))}
    rows = [Row("closed loop, concurrency 8", "c8.rps", "successful requests/s", "req/s", "higher", cells)]
    tabulate(rows, ["a", "b"], "a")
    return spread_flags(run, rows)


def test_a_slowdown_every_variant_shared_is_named_machine_wide() -> None:
    # Both slower by ~12% in repeat 1: the machine, not the variant (the quick run of 2026-12-01 looked so).
    flags = {flag.variant: flag for flag in _two_variant_flags([60.0, 53.0], [36.0, 31.8])}
    assert set(flags) == {"a", "b"}
    for flag in flags.values():
        assert "machine-wide slowdown: the other variants ran 12% slower in repeat 1 too" in flag.message
        assert flag.short is not None and flag.short.endswith("machine-wide slowdown")


def test_a_slowdown_of_one_variant_alone_is_not_machine_wide() -> None:
    flags = {flag.variant: flag for flag in _two_variant_flags([60.0, 50.0], [36.0, 36.2])}
    assert set(flags) == {"a"} and "machine-wide" not in flags["a"].message
    # the other variant moved, but far less than this one: still not the machine's doing
    flags = {flag.variant: flag for flag in _two_variant_flags([60.0, 48.0], [36.0, 34.0])}
    assert "machine-wide" not in flags["a"].message
