"""The one table: rows of per-variant cells, summarized as a pandas frame (medians, [min-max], ratios).

Sections build :class:`Row` objects whose cells hold the raw values they summarize (or a text: n/a with its
reason). :func:`tabulate` puts every (row, variant) cell into one long frame and computes the spread of
each cell and its ratio to the baseline as frame operations; the renderers write from that frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.records.models import SkippedVariant
from bench.report.flags import Flag, ReportFlag
from bench.stats import Spread, percentile

NO_VALUE = "n/a (no value)"
MEDIAN = "median"


@dataclass
class Cell:
    """One variant's figure for one metric: the raw values it summarizes, or a text (n/a with its reason).

    ``summary`` and ``ratio`` are filled in by :func:`tabulate`.
    """

    values: list[float] = field(default_factory=list)
    text: str | None = None
    flag: Flag | None = None
    ratio: float = math.nan
    summary: Spread | None = None

    @property
    def median(self) -> float:
        return self.summary.median if self.summary is not None else math.nan


@dataclass
class Row:
    section: str
    key: str
    label: str
    unit: str
    better: str | None  # "higher", "lower" or None (not a figure of merit)
    cells: dict[str, Cell]
    spread_of: str = "repeats"  # what the min-max range is taken over
    statistic: str = MEDIAN  # the cell's figure: the median of its values, or a percentile such as "p95"


@dataclass
class Table:
    variants: list[str]
    baseline: str
    rows: list[Row]
    notes: list[str]
    run: dict[str, Any]
    flags: list[ReportFlag]
    frame: pd.DataFrame
    skipped: list[SkippedVariant] = field(default_factory=list)
    machine: str = ""  # was the machine quiet (bench.report.machine), "" for a run without calibrations

    def row(self, key: str) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(key)


def _center(values: pd.Series, statistic: str) -> float:
    if statistic == MEDIAN:
        return float(np.median(values))
    return percentile(values.tolist(), float(statistic.removeprefix("p")))


def _cell_frame(rows: list[Row], variants: list[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [
            {
                "row": position,
                "variant": variant,
                "key": row.key,
                "section": row.section,
                "label": row.label,
                "unit": row.unit,
                "better": row.better,
                "spread_of": row.spread_of,
                "statistic": row.statistic,
                "values": row.cells[variant].values,
                "text": row.cells[variant].text,
                "flag": row.cells[variant].flag,
            }
            for position, row in enumerate(rows)
            for variant in variants
        ],
        columns=["row", "variant", "key", "section", "label", "unit", "better", "spread_of", "statistic",
                 "values", "text", "flag"],
    )  # fmt: skip


def _spreads(cells: pd.DataFrame) -> pd.DataFrame:
    """Per (row, variant): the figure (median or percentile) of the finite values, their min, max and n."""
    samples = cells.loc[cells["text"].isna(), ["row", "variant", "statistic", "values"]].explode("values")
    samples["value"] = pd.to_numeric(samples["values"], errors="coerce").astype(float)
    samples = samples[np.isfinite(samples["value"])]
    grouped = samples.groupby(["row", "variant", "statistic"], sort=False)["value"]
    spreads = grouped.agg(low="min", high="max", n="count")
    centers = {group: _center(values, group[2]) for group, values in grouped}
    spreads["median"] = [centers[group] for group in spreads.index]
    return spreads.reset_index().drop(columns="statistic")


def _ratios(frame: pd.DataFrame, baseline: str) -> pd.Series:
    """Each cell's median over the baseline's median in its row; NaN where either is missing, the baseline
    is zero, for the baseline itself, and on rows that are not a figure of merit."""
    medians = frame.pivot(index="row", columns="variant", values="median")
    if baseline not in medians:
        return pd.Series(math.nan, index=frame.index)
    base = medians[baseline]
    merit = frame.groupby("row")["better"].first().notna()
    valid = merit & np.isfinite(base) & (base != 0)
    ratios = medians.div(base, axis=0).where(valid, axis=0)
    ratios = ratios.where(np.isfinite(ratios))
    ratios[baseline] = math.nan
    stacked = ratios.stack().rename("ratio")
    return frame.join(stacked, on=["row", "variant"])["ratio"]


def tabulate(rows: list[Row], variants: list[str], baseline: str) -> pd.DataFrame:
    """The long frame of every cell (one line per row and variant, in row order) with ``median``, ``low``,
    ``high``, ``n`` and ``ratio``; also writes each cell's summary and ratio back into ``rows``."""
    cells = _cell_frame(rows, variants)
    frame = cells.merge(_spreads(cells), on=["row", "variant"], how="left")
    frame["n"] = frame["n"].fillna(0).astype(int)
    frame["text"] = frame["text"].where(frame["text"].notna() | (frame["n"] > 0), NO_VALUE)
    frame["ratio"] = _ratios(frame, baseline)
    for line in frame.itertuples():
        cell = rows[line.row].cells[line.variant]
        cell.text = line.text if isinstance(line.text, str) else None
        cell.summary = Spread(float(line.median), float(line.low), float(line.high), int(line.n))
        cell.ratio = float(line.ratio)
    return frame
