"""Was the machine quiet? The calibration loops before every load repeat and the host's CPU steal decide it,
and a spread row whose repeats followed the calibration names it as the cause. Records are constructed here;
the probe itself runs for real (a fresh process pinned to a core, timing numpy loops)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from bench.collectors.machine_speed import ROUNDS, measure_machine_speed
from bench.records import RunRecords, VariantRecords, load_run
from bench.records.models import CoreSpeed, LoadLevel, LoadWindow, MachineSpeed, RunInfo
from bench.report.flags import FlagCode
from bench.report.machine import MACHINE, machine_flags, steadiness
from bench.report.spread import spread_flags
from bench.report.table import Cell, Row, tabulate
from bench.results import RunDir, write_json


def _speed(compute_ms: float, memory_ms: float = 30.0, steal: float = 0.0) -> MachineSpeed:
    return MachineSpeed(
        steal_percent=steal, cores=[CoreSpeed(core=1, compute_ms=compute_ms, memory_ms=memory_ms)]
    )


def _level(repeat: int, rps: float, steal: float = 0.0) -> LoadLevel:
    latencies = np.exp(np.random.default_rng(repeat).normal(np.log(40.0), 0.05, 200)).tolist()
    window = LoadWindow(duration_s=10.0, successes=int(rps * 10), generator_cpu_percent=40.0,
                        host_steal_percent=steal)  # fmt: skip
    return LoadLevel(repeat=repeat, users=8, window=window, latencies=latencies)


def _run(variants: dict[str, VariantRecords]) -> RunRecords:
    info = RunInfo.model_validate(
        {"profile": {"concurrency_levels": [8], "repeats": 2}, "baseline": "a",
         "sysinfo": {"logical_cores": 2, "load_average_1m_at_start": 0.1},
         "variants": [{"name": name} for name in variants]}
    )  # fmt: skip
    return RunRecords(Path(), info, variants, [], info.model_dump())


def _variant(name: str, speeds: list[MachineSpeed], rps: list[float], steal: float = 0.0) -> VariantRecords:
    levels = [_level(repeat, value, steal) for repeat, value in enumerate(rps)]
    return VariantRecords(name, levels=levels, machine=dict(enumerate(speeds)))


def test_a_flat_calibration_without_steal_is_a_quiet_machine() -> None:
    run = _run({"a": _variant("a", [_speed(35.0), _speed(35.6)], [20.0, 20.3]),
                "b": _variant("b", [_speed(35.3), _speed(35.1)], [30.0, 30.2])})  # fmt: skip
    found = steadiness(run)
    assert found.probes == 4 and found.quiet
    assert math.isclose(found.shift["compute"], 0.6 / 35.2, rel_tol=1e-9)
    assert found.describe().startswith("quiet: the calibration loops moved compute 1.7%, memory 0.0%")
    assert machine_flags(run) == []


def test_a_calibration_that_moved_flags_the_machine_and_names_the_slowest_probe() -> None:
    run = _run({"a": _variant("a", [_speed(35.0), _speed(35.0, memory_ms=34.0)], [20.0, 20.0]),
                "b": _variant("b", [_speed(35.0), _speed(35.2)], [30.0, 30.0])})  # fmt: skip
    [flag] = machine_flags(run)
    assert flag.code is FlagCode.MACHINE_NOT_QUIET and flag.variant == MACHINE
    assert "not quiet" in flag.message and "memory 13.3%" in flag.message
    assert "memory slowest before a repeat 1" in flag.message


def test_host_steal_in_a_load_window_is_not_quiet() -> None:
    run = _run({"a": _variant("a", [_speed(35.0), _speed(35.0)], [20.0, 20.0], steal=2.5)})
    found = steadiness(run)
    assert found.steal_percent == 2.5 and not found.quiet
    assert "host CPU steal at most 2.5%" in machine_flags(run)[0].message


def test_one_probe_decides_nothing() -> None:
    run = _run({"a": _variant("a", [_speed(35.0)], [20.0])})
    assert not steadiness(run).measured and machine_flags(run) == []
    assert steadiness(run).describe().startswith("not measured")


def _spread_flags(run: RunRecords) -> list:
    values = {
        name: [level.window.throughput_rps for level in records.levels]
        for name, records in run.variants.items()
    }
    rows = [Row("closed loop, concurrency 8", "c8.rps", "successful requests/s", "req/s", "higher",
                {name: Cell(values=found) for name, found in values.items()})]  # fmt: skip
    tabulate(rows, list(values), "a")
    return spread_flags(run, rows)


def test_a_spread_row_that_followed_the_calibration_names_it() -> None:
    run = _run({"a": _variant("a", [_speed(35.0), _speed(40.0)], [22.0, 19.0])})
    [flag] = _spread_flags(run)
    assert flag.code is FlagCode.REPEAT_SPREAD
    assert "machine slower (calibration)" in (flag.short or "")
    assert "before repeat 1 the compute loop took 40.0 ms, before repeat 0 35.0 ms (13%)" in flag.message


def test_a_spread_row_under_host_steal_names_it() -> None:
    run = _run({"a": _variant("a", [_speed(35.0), _speed(35.0)], [22.0, 19.0], steal=4.0)})
    [flag] = _spread_flags(run)
    assert "host CPU steal" in (flag.short or "") and "repeat 0 4.0%" in flag.message


def test_a_spread_row_on_a_flat_calibration_does_not_blame_the_machine() -> None:
    run = _run({"a": _variant("a", [_speed(35.0), _speed(35.3)], [22.0, 19.0])})
    [flag] = _spread_flags(run)
    assert "calibration" not in flag.message and "steal" not in flag.message


def test_the_probe_runs_for_real_on_a_usable_core_and_loads_back(tmp_path: Path) -> None:
    core = sorted(os.sched_getaffinity(0))[-1]
    measured = measure_machine_speed([core])
    [found] = measured["cores"]
    assert found["core"] == core and found["rounds"] == ROUNDS
    for loop in ("compute", "memory"):
        low, high = found[f"{loop}_range_ms"]
        assert 0 < low <= found[f"{loop}_ms"] <= high
    assert 0 <= measured["steal_percent"] < 100
    run_dir = RunDir(tmp_path)
    write_json(run_dir.run_file, {"profile": {"repeats": 1, "concurrency_levels": [1]}, "baseline": "a",
                                  "variants": [{"name": "a"}]})  # fmt: skip
    write_json(run_dir.machine_speed_file("a", 0), json.loads(json.dumps(measured)))
    loaded = load_run(tmp_path).variants["a"].machine[0]
    assert loaded.compute_ms == found["compute_ms"] and loaded.cores[0].core == core
