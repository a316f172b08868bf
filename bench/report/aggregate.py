"""Raw data of a run directory -> ONE table: metrics as rows, variants as columns, medians and ratios.

Everything here reads only files under the run directory (through ``bench.records``), so
``python -m bench report <dir>`` reproduces the report. The sections (``bench.report.sections``) turn the
records into rows, ``table.tabulate`` summarizes them as a pandas frame, and the cells' warning flags and
the failed steps, and the throughput rows whose repeats spread too far (``bench.report.spread``), become the
report's Flags.
"""

from __future__ import annotations

from pathlib import Path

from bench.records import RunRecords, load_run
from bench.report.flags import FlagCode, ReportFlag, Severity
from bench.report.machine import machine_flags, steadiness
from bench.report.notes import notes
from bench.report.sections import SECTIONS
from bench.report.spread import spread_flags
from bench.report.table import Cell, Row, Table, tabulate
from bench.results import RunDir

__all__ = ["Cell", "Row", "Table", "build_table", "report_flags"]


def report_flags(run: RunRecords, rows: list[Row]) -> list[ReportFlag]:
    """Warnings raised in cells and every failed step, once each, in the order of their text."""
    found = {
        ReportFlag(cell.flag.code, cell.flag.severity, variant, cell.flag.message, row.section)
        for row in rows
        for variant, cell in row.cells.items()
        if cell.flag is not None and cell.flag.severity is not Severity.INFO
    }
    for name, records in run.variants.items():
        found |= {
            ReportFlag(FlagCode.STEP_FAILED, Severity.ERROR, name, error.error.splitlines()[0])
            for error in records.errors
        }
    unique = {str(flag): flag for flag in found}
    return [unique[text] for text in sorted(unique)]


def build_table(source: Path | RunDir | RunRecords) -> Table:
    """The table of a run directory (or of its records, already loaded)."""
    run = source if isinstance(source, RunRecords) else load_run(source)
    rows = [row for section in SECTIONS for row in section(run)]
    frame = tabulate(rows, run.names, run.baseline)
    flags = report_flags(run, rows)
    spread = [*spread_flags(run, rows), *machine_flags(run)]
    machine = steadiness(run)
    return Table(run.names, run.baseline, rows, notes(run), run.run_json, sorted([*flags, *spread], key=str),
                 frame, run.skipped, machine.describe() if machine.probes else "")  # fmt: skip
