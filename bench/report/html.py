"""The self-contained HTML page (plots embedded as base64), rendered from ``templates/report.html.j2``."""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from bench.report.layout import context_lines, header, sections, skipped_lines, title
from bench.report.table import Table

TEMPLATES = Path(__file__).with_name("templates")
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "j2"]),
    keep_trailing_newline=True,
)


def to_html(table: Table, plots: list[Path]) -> str:
    images = [(path.stem, base64.b64encode(path.read_bytes()).decode()) for path in plots]
    return _ENVIRONMENT.get_template("report.html.j2").render(
        title=title(table),
        context=context_lines(table),
        header=header(table),
        width=len(table.variants) + 2,
        sections=list(sections(table)),
        images=images,
        skipped=skipped_lines(table),
        notes=table.notes,
        flags=[str(flag) for flag in table.flags],
    )
