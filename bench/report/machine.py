"""Was the machine quiet? The calibration loops run before every load repeat (bench.collectors.machine_speed)
and the host's CPU steal during every load window say so from measurement, not from the variants' own figures:
a run is quiet when every calibration came within QUIET_SHIFT of the run's median and the host stole less
than QUIET_STEAL_PERCENT of the CPU time. A loud run is flagged once, and the spread check names the
calibration when it moved with a row's repeats."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.records import RunRecords, VariantRecords
from bench.records.models import MachineSpeed
from bench.report.flags import FlagCode, ReportFlag, Severity

# The 7 rounds of one probe span 1-3% on the 2-core VMs this lab runs on, and their median moves less; a
# shift past this between probes is the machine's, not the loop's.
QUIET_SHIFT = 0.05
QUIET_STEAL_PERCENT = 1.0  # of all CPUs' time, in a probe or a load window
MACHINE = "machine"  # the Flags list's "variant" for what concerns the whole run
LOOPS = ("compute", "memory")


@dataclass(frozen=True)
class Steadiness:
    """The run's calibrations against their median, per loop, and the highest steal seen."""

    probes: int
    shift: dict[str, float]  # loop -> (max - min) / median of its median rounds over every probe
    slowest: dict[str, str]  # loop -> "variant repeat r" of its slowest probe
    steal_percent: float  # the highest over probes and load windows (nan: none reported)

    @property
    def measured(self) -> bool:
        return self.probes >= 2

    @property
    def quiet(self) -> bool:
        loud_steal = math.isfinite(self.steal_percent) and self.steal_percent >= QUIET_STEAL_PERCENT
        return self.measured and max(self.shift.values()) < QUIET_SHIFT and not loud_steal

    def describe(self) -> str:
        if not self.measured:
            return f"not measured ({self.probes} calibration probe(s); two are needed)"
        loops = ", ".join(f"{loop} {self.shift[loop]:.1%}" for loop in LOOPS)
        steal = f"{self.steal_percent:.1f}%" if math.isfinite(self.steal_percent) else "not reported"
        verdict = "quiet" if self.quiet else "not quiet"
        return (
            f"{verdict}: the calibration loops moved {loops} over {self.probes} probes"
            f" (quiet: under {QUIET_SHIFT:.0%}); host CPU steal at most {steal}"
            f" (quiet: under {QUIET_STEAL_PERCENT:g}%)"
        )


def _loop_ms(speed: MachineSpeed, loop: str) -> float:
    return speed.compute_ms if loop == "compute" else speed.memory_ms


def relative_shift(values: list[float]) -> float:
    return (max(values) - min(values)) / float(np.median(values)) if len(values) >= 2 else 0.0


def window_steal(records: VariantRecords) -> list[float]:
    windows = [level.window for level in records.levels] + [run.window for run in records.open_runs]
    return [window.host_steal_percent for window in windows if math.isfinite(window.host_steal_percent)]


def steadiness(run: RunRecords) -> Steadiness:
    probes = [
        (f"{name} repeat {repeat}", speed)
        for name, records in run.variants.items()
        for repeat, speed in sorted(records.machine.items())
    ]
    shift, slowest = {}, {}
    for loop in LOOPS:
        values = [_loop_ms(speed, loop) for _, speed in probes]
        shift[loop] = relative_shift(values)
        slowest[loop] = max(probes, key=lambda probe: _loop_ms(probe[1], loop))[0] if probes else ""
    steals = [speed.steal_percent for _, speed in probes if math.isfinite(speed.steal_percent)]
    steals += [steal for records in run.variants.values() for steal in window_steal(records)]
    return Steadiness(len(probes), shift, slowest, max(steals) if steals else math.nan)


def machine_flags(run: RunRecords) -> list[ReportFlag]:
    """One warning when the calibrations say the machine was not quiet (none when they were not measured)."""
    found = steadiness(run)
    if not found.measured or found.quiet:
        return []
    slowest = "; ".join(f"{loop} slowest before {found.slowest[loop]}" for loop in LOOPS)
    return [
        ReportFlag(
            FlagCode.MACHINE_NOT_QUIET,
            Severity.WARNING,
            MACHINE,
            f"machine {found.describe()}; {slowest}. Repeats of every variant carry that spread.",
        )
    ]


def calibration_cause(records: VariantRecords, repeats: list[int]) -> tuple[str, str] | None:
    """The machine slower before some of a row's repeats than before others, by its own calibration."""
    speeds = {repeat: records.machine[repeat] for repeat in repeats if repeat in records.machine}
    if len(speeds) < 2:
        return None
    for loop in LOOPS:
        by_repeat = {repeat: _loop_ms(speed, loop) for repeat, speed in speeds.items()}
        shift = relative_shift(list(by_repeat.values()))
        if shift >= QUIET_SHIFT:
            slow = max(by_repeat, key=by_repeat.__getitem__)
            fast = min(by_repeat, key=by_repeat.__getitem__)
            return (
                f"machine slower by its own calibration: before repeat {slow} the {loop} loop took"
                f" {by_repeat[slow]:.1f} ms, before repeat {fast} {by_repeat[fast]:.1f} ms ({shift:.0%})",
                "machine slower (calibration)",
            )
    return None


def steal_cause(windows: list[tuple[int, float]]) -> tuple[str, str] | None:
    """The host gave this VM's CPU time to other guests during some of a row's repeats (repeat, steal %)."""
    stolen = [(repeat, steal) for repeat, steal in windows if steal >= QUIET_STEAL_PERCENT]
    if not stolen:
        return None
    listed = ", ".join(f"repeat {repeat} {steal:.1f}%" for repeat, steal in stolen)
    return f"host CPU steal during the load ({listed} of all CPU time)", "host CPU steal"
