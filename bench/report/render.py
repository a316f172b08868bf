"""The one table in Markdown, CSV, JSON and a self-contained HTML page (plots embedded as base64)."""

from __future__ import annotations

import base64
import csv
import html
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report.aggregate import Cell, Row, Table
from bench.results import RunDir, write_json

ARROWS = {"higher": " ↑", "lower": " ↓", None: ""}


def format_number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if value == int(value) and magnitude < 1e6:
        return f"{int(value):,}"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_cell(cell: Cell, *, is_baseline: bool) -> str:
    if cell.text is not None:
        return cell.text
    summary = cell.summary
    assert summary is not None
    text = format_number(summary.median)
    if summary.n > 1:
        text += f" [{format_number(summary.low)}–{format_number(summary.high)}]"
    if not is_baseline and not math.isnan(cell.ratio):
        text += f" ×{cell.ratio:.2f}"
    if cell.flag:
        text += f" ({cell.flag})"
    return text


def _header(table: Table) -> list[str]:
    return ["metric", "unit"] + [
        f"{variant} (baseline)" if variant == table.baseline else variant for variant in table.variants
    ]


def _row_cells(table: Table, row: Row) -> list[str]:
    return [f"{row.label}{ARROWS[row.better]}", row.unit] + [
        format_cell(row.cells[variant], is_baseline=variant == table.baseline) for variant in table.variants
    ]


def _sections(table: Table) -> list[tuple[str, list[Row]]]:
    grouped: dict[str, list[Row]] = {}
    for row in table.rows:
        grouped.setdefault(row.section, []).append(row)
    return list(grouped.items())


def _title(table: Table) -> str:
    started = datetime.fromtimestamp(table.run["started_unix"], UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"serving-lab comparison, {table.run['profile']['name']} profile, {started}"


def _context_lines(table: Table) -> list[str]:
    sysinfo = table.run["sysinfo"]
    git = sysinfo["git"]
    commit = (git["commit"] or "unknown")[:12] + (" (dirty)" if git.get("dirty") else "")
    return [
        f"Machine: {sysinfo['cpu_model']}, {sysinfo['logical_cores']} logical cores, cgroup cpu.max"
        f" {sysinfo['cgroup']['cpu.max']}, load average at start {sysinfo['load_average_1m_at_start']:.2f}",
        f"Runner: {table.run['runner']['runner']}; commit {commit}; python {sysinfo['python']}; "
        + ", ".join(f"{name} {version}" for name, version in sysinfo["libraries"].items() if version),
    ]


def to_markdown(table: Table) -> str:
    header = _header(table)
    lines = [f"# {_title(table)}", "", *[f"- {line}" for line in _context_lines(table)], ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for section, rows in _sections(table):
        lines.append(f"| **{section}** |" + " |" * (len(header) - 1))
        lines += [
            "| " + " | ".join(cell.replace("|", "/") for cell in _row_cells(table, row)) + " |"
            for row in rows
        ]
    lines += ["", "Notes:", *[f"- {note}" for note in table.notes]]
    if table.flags:
        lines += ["", "Flags:", *[f"- {flag}" for flag in table.flags]]
    return "\n".join(lines) + "\n"


def write_csv(table: Table, path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        columns = ["section", "key", "metric", "unit", "better"]
        for variant in table.variants:
            columns += [
                f"{variant} median",
                f"{variant} min",
                f"{variant} max",
                f"{variant} n",
                f"{variant} vs {table.baseline}",
                f"{variant} note",
            ]
        writer.writerow(columns)
        for row in table.rows:
            line: list[Any] = [row.section, row.key, row.label, row.unit, row.better or ""]
            for variant in table.variants:
                cell = row.cells[variant]
                summary = cell.summary
                numbers = (
                    [summary.median, summary.low, summary.high] if summary and summary.n else ["", "", ""]
                )
                line += [
                    *numbers,
                    summary.n if summary else 0,
                    "" if math.isnan(cell.ratio) else cell.ratio,
                    cell.text or cell.flag or "",
                ]
            writer.writerow(line)
    return path


def to_json(table: Table) -> dict[str, Any]:
    def cell_json(cell: Cell) -> dict[str, Any]:
        summary = cell.summary
        return {
            "median": summary.median if summary and summary.n else None,
            "min": summary.low if summary and summary.n else None,
            "max": summary.high if summary and summary.n else None,
            "n": summary.n if summary else 0,
            "values": cell.values,
            "ratio_to_baseline": None if math.isnan(cell.ratio) else cell.ratio,
            "text": cell.text,
            "flag": cell.flag,
        }

    return {
        "title": _title(table),
        "baseline": table.baseline,
        "variants": table.variants,
        "rows": [
            {
                "section": row.section,
                "key": row.key,
                "metric": row.label,
                "unit": row.unit,
                "better": row.better,
                "spread_of": row.spread_of,
                "cells": {v: cell_json(c) for v, c in row.cells.items()},
            }
            for row in table.rows
        ],
        "notes": table.notes,
        "flags": table.flags,
        "run": table.run,
    }


def to_html(table: Table, plots: list[Path]) -> str:
    header = "".join(f"<th>{html.escape(column)}</th>" for column in _header(table))
    body = []
    for section, rows in _sections(table):
        body.append(
            f'<tr class="section"><td colspan="{len(table.variants) + 2}">{html.escape(section)}</td></tr>'
        )
        for row in rows:
            cells = _row_cells(table, row)
            body.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
    images = "".join(
        f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode()}"></figure>'
        for path in plots
    )
    items = lambda lines: "".join(f"<li>{html.escape(line)}</li>" for line in lines)  # noqa: E731
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(_title(table))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }}
th {{ background: #f0f0f0; }} tr.section td {{ background: #e8eef6; font-weight: 600; }}
figure {{ display: inline-block; margin: 1rem 1rem 0 0; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(_title(table))}</h1>
<ul>{items(_context_lines(table))}</ul>
<table><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table>
<h2>Plots</h2>{images}
<h2>Notes</h2><ul>{items(table.notes)}</ul>
{"<h2>Flags</h2><ul>" + items(table.flags) + "</ul>" if table.flags else ""}
</body></html>
"""


def write_outputs(table: Table, run_dir: RunDir, plots: list[Path]) -> list[Path]:
    markdown = run_dir.report_file("md")
    markdown.write_text(to_markdown(table))
    html_file = run_dir.report_file("html")
    html_file.write_text(to_html(table, plots))
    return [
        markdown,
        write_csv(table, run_dir.report_file("csv")),
        write_json(run_dir.report_file("json"), to_json(table)),
        html_file,
    ]
