"""The self-contained HTML page (plots embedded as base64), rendered from ``templates/report.html.j2``."""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from bench.report.layout import (
    GLANCE,
    GLANCE_ALT,
    context_lines,
    header,
    sections,
    skipped_lines,
    title,
    verdict_header,
    verdict_lines,
)
from bench.report.overhead import OVERHEAD_TEXT, framework_overheads
from bench.report.overhead import header as overhead_header
from bench.report.table import Table
from bench.report.verdict import build_verdict

TEMPLATES = Path(__file__).with_name("templates")
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "j2"]),
    keep_trailing_newline=True,
)


def _embedded(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def to_html(table: Table, plots: list[Path]) -> str:
    """The page; the glance plot (plots/glance.png) goes right after the verdict, the others under Plots."""
    glance = next((path for path in plots if path.stem == GLANCE), None)
    images = [(path.stem, _embedded(path)) for path in plots if path is not glance]
    verdict = build_verdict(table)
    overheads = framework_overheads(table)
    return _ENVIRONMENT.get_template("report.html.j2").render(
        title=title(table),
        context=context_lines(table),
        rule=verdict.rule.text,
        verdict_header=verdict_header(verdict),
        verdict_rows=[
            (row.flags, line) for row, line in zip(verdict.rows, verdict_lines(verdict), strict=True)
        ],
        overhead_text=OVERHEAD_TEXT,
        overhead_header=overhead_header(overheads),
        overhead_rows=[overhead.cells() for overhead in overheads],
        glance=_embedded(glance) if glance is not None else None,
        glance_alt=GLANCE_ALT,
        header=header(table),
        width=len(table.variants) + 2,
        sections=list(sections(table)),
        images=images,
        skipped=skipped_lines(table),
        notes=table.notes,
        flags=[str(flag) for flag in table.flags],
    )
