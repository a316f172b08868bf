"""Raw run data -> one comparison table (aggregate) -> a verdict ranking the variants (verdict) above the
detail table -> Markdown, CSV, JSON, HTML and PNG plots."""

from __future__ import annotations

from pathlib import Path

from bench.records import load_run
from bench.report.aggregate import build_table
from bench.report.plots import write_plots
from bench.report.render import write_outputs
from bench.report.table import Table
from bench.results import RunDir

__all__ = ["Table", "build_table", "render_report"]


def render_report(run_dir: RunDir | Path) -> Table:
    """(Re)build every report file of a run directory from its raw data."""
    directory = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
    run = load_run(directory)
    table = build_table(run)
    write_outputs(table, directory, write_plots(table, run, directory))
    return table
