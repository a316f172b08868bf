"""Raw run data -> one comparison table (aggregate) -> Markdown, CSV, JSON, HTML and PNG plots."""

from __future__ import annotations

from pathlib import Path

from bench.report.aggregate import Table, build_table
from bench.report.plots import write_plots
from bench.report.render import write_outputs
from bench.results import RunDir

__all__ = ["Table", "build_table", "render_report"]


def render_report(run_dir: RunDir | Path) -> Table:
    """(Re)build every report file of a run directory from its raw data."""
    root = run_dir.root if isinstance(run_dir, RunDir) else Path(run_dir)
    table = build_table(root)
    plots = write_plots(table, RunDir(root))
    write_outputs(table, RunDir(root), plots)
    return table
