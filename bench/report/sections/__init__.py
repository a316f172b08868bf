"""The report's sections, in table order: each turns the typed records of a run into rows."""

from collections.abc import Callable

from bench.records import RunRecords
from bench.report.sections import accuracy, closed_loop, footprint, inprocess, open_loop, startup
from bench.report.table import Row

Section = Callable[[RunRecords], list[Row]]

SECTIONS: list[Section] = [
    closed_loop.closed_loop_section,
    inprocess.ceiling_section,
    open_loop.openloop_section,
    open_loop.slo_section,
    inprocess.jpeg_draft_section,
    startup.startup_section,
    footprint.footprint_section,
    accuracy.accuracy_section,
]
