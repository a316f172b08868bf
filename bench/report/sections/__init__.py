"""The report's sections, in table order: each turns the typed records of a run into rows."""

from collections.abc import Callable

from bench.records import RunRecords
from bench.report.sections import (
    accuracy,
    approximation,
    closed_loop,
    footprint,
    inprocess,
    open_loop,
    startup,
    targets,
)
from bench.report.table import Row

Section = Callable[[RunRecords], list[Row]]

MEASURED: list[Section] = [
    closed_loop.closed_loop_section,
    inprocess.ceiling_section,
    inprocess.floor_section,
    open_loop.openloop_section,
    open_loop.slo_section,
    inprocess.jpeg_draft_section,
    startup.startup_section,
    footprint.footprint_section,
    accuracy.accuracy_section,
    approximation.approximation_section,
]
# Last: the goals of bench/targets.toml, judged on the figures of every section above.
SECTIONS: list[Section] = [*MEASURED, targets.targets_section(MEASURED)]
