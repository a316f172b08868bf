"""Raw data of a run directory -> ONE table: metrics as rows, variants as columns, medians and ratios.

Everything here reads only files under the run directory, so `python -m bench report <dir>` reproduces
the report. Each section is a function that turns the raw data into rows; issue 6's sections (open-loop
tail, max RPS under SLO, in-process ceiling) add functions to ``SECTIONS`` the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.collectors.resources import summarize_samples, within_window
from bench.results import RunDir, is_not_measured, read_json
from bench.stats import LATENCY_PERCENTILES, Spread, latency_summary, percentile, ratio, spread

MB = 1e6


@dataclass
class Cell:
    """One variant's figure for one metric: the raw values it summarizes, or a text (n/a with its reason)."""

    values: list[float] = field(default_factory=list)
    text: str | None = None
    flag: str | None = None
    ratio: float = math.nan
    summary: Spread | None = None

    def __post_init__(self) -> None:
        if self.summary is None and self.text is None:
            self.summary = spread(self.values)
            if self.summary.n == 0:
                self.text = "n/a (no value)"

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


@dataclass
class Table:
    variants: list[str]
    baseline: str
    rows: list[Row]
    notes: list[str]
    run: dict[str, Any]
    flags: list[str]

    def row(self, key: str) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(key)


class RawRun:
    """Typed access to one run directory's raw files."""

    def __init__(self, root: Path) -> None:
        self.dir = RunDir(root)
        self.run = read_json(self.dir.run_file)
        self.variants = [variant["name"] for variant in self.run["variants"]]
        self.profile = self.run["profile"]

    def measurement(self, variant: str, kind: str) -> Any:
        path = self.dir.measurement(variant, kind)
        return read_json(path) if path.is_file() else None

    def errors(self, variant: str) -> list[str]:
        folder = self.dir.variant_dir(variant) / "errors"
        return [read_json(path)["error"] for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []

    def missing_reason(self, variant: str, data: Any = None) -> str:
        if is_not_measured(data):
            return f"n/a ({data['reason']})"
        errors = self.errors(variant)
        if errors:
            return f"n/a (failed: {errors[0].splitlines()[0][:120]})"
        return "n/a (not measured)"

    def levels(self, variant: str, users: int) -> list[dict[str, Any]]:
        """Per repeat of one concurrency level: window, latencies and resource samples."""
        found = []
        for repeat in range(self.profile["repeats"]):
            folder = self.dir.load_dir(variant, repeat, users)
            if not (folder / "window.json").is_file():
                continue
            resources_file = folder / "resources.json"
            found.append(
                {
                    "window": read_json(folder / "window.json"),
                    "latencies": read_json(folder / "latencies.json"),
                    "resources": read_json(resources_file) if resources_file.is_file() else None,
                }
            )
        return found


Section = Callable[[RawRun], list[Row]]


def _cells(raw: RawRun, per_variant: Callable[[str], Cell]) -> dict[str, Cell]:
    return {variant: per_variant(variant) for variant in raw.variants}


def _level_metrics(level: dict[str, Any]) -> dict[str, float]:
    window, latencies = level["window"], level["latencies"]
    duration = max(window["duration_s"], 1e-9)
    metrics = latency_summary(latencies)
    metrics.update(
        {
            "rps": window["successes"] / duration,
            "failures": float(window["failures"]),
            "sent_mb_s": window["request_bytes"] / duration / MB,
            "received_kb_s": window["response_bytes"] / duration / 1e3,
            "generator_cpu": window["generator_cpu_percent"],
        }
    )
    resources = level["resources"]
    if resources is not None and not is_not_measured(resources):
        measured = within_window(resources["samples"], window["start_unix"], window["duration_s"])
        metrics.update(summarize_samples(measured))
    return metrics


def load_section(raw: RawRun) -> list[Row]:
    payload = Path(next(iter(raw.run["payloads"].values()))["file"]).name if raw.run["payloads"] else "?"
    measure = (
        f"{raw.profile['requests_per_level']} requests"
        if raw.profile["requests_per_level"]
        else f"{raw.profile['duration_s']:g} s"
    )
    metrics_spec: list[tuple[str, str, str, str | None]] = [
        ("rps", "successful requests/s", "req/s", "higher"),
        *[(label, f"latency {label}", "ms", "lower") for label, _ in LATENCY_PERCENTILES],
        ("max", "latency max", "ms", "lower"),
        ("failures", "failed requests", "count", "lower"),
        ("sent_mb_s", "request bytes sent", "MB/s", "higher"),
        ("received_kb_s", "response bytes received", "kB/s", None),
        ("cpu_mean", "service CPU mean (100 = 1 core)", "%", None),
        ("cpu_peak", "service CPU peak", "%", None),
        ("rss_mean_mb", "service RSS mean (process tree)", "MB", "lower"),
        ("rss_peak_mb", "service RSS peak (process tree)", "MB", "lower"),
        ("generator_cpu", "load generator CPU (its own core)", "%", None),
    ]
    rows = []
    for users in raw.profile["concurrency_levels"]:
        levels = {variant: raw.levels(variant, users) for variant in raw.variants}
        section = f"closed loop, concurrency {users} ({payload}, {measure} per repeat, warmup excluded)"
        for key, label, unit, better in metrics_spec:
            cells = {variant: _level_cell(raw, variant, levels[variant], key) for variant in raw.variants}
            rows.append(Row(section, f"c{users}.{key}", label, unit, better, cells))
    return rows


def _level_cell(raw: RawRun, variant: str, levels: list[dict[str, Any]], key: str) -> Cell:
    """One metric of one concurrency level over the repeats, with the flags a reader must see."""
    if not levels:
        return Cell(text=raw.missing_reason(variant))
    values = [metrics[key] for metrics in map(_level_metrics, levels) if key in metrics]
    if not values:  # resource rows of a runner that cannot sample
        return Cell(text=raw.missing_reason(variant, levels[0]["resources"]))
    flag = None
    if key in {"rps", "generator_cpu"} and any(level["window"]["generator_saturated"] for level in levels):
        flag = "generator saturated its core: throughput may be understated"
    if key == "failures" and any(value > 0 for value in values):
        flag = "some requests failed"
    return Cell(values=values, flag=flag)


def startup_section(raw: RawRun) -> list[Row]:
    specs = [
        ("ready_s", "start to ready, median of starts", "s", "lower", "starts", None),
        ("ready_s", "start to ready, p95 of starts", "s", "lower", "starts", 95.0),
        ("first_request_ms", "first request after ready (warmup on)", "ms", "lower", "starts", None),
        ("cold_first_request_ms", "first request with warmup off (cold)", "ms", "lower", "cold starts", None),
        ("warm_request_ms", "warm request after that cold start", "ms", "lower", "cold starts", None),
    ]
    rows = []
    for key, label, unit, better, spread_of, q in specs:

        def cell(variant: str, key: str = key, q: float | None = q) -> Cell:
            data = raw.measurement(variant, "startup")
            if data is None or is_not_measured(data) or not data.get(key):
                return Cell(text=raw.missing_reason(variant, data))
            values = data[key]
            if q is None:
                return Cell(values=values)
            value = percentile(values, q)
            return Cell(values=values, summary=Spread(value, min(values), max(values), len(values)))

        row_key = f"startup.{key}" + (f".p{q:g}" if q is not None else "")
        rows.append(Row("startup", row_key, label, unit, better, _cells(raw, cell), spread_of=spread_of))
    return rows


def footprint_section(raw: RawRun) -> list[Row]:
    def closure(variant: str) -> Cell:
        data = raw.measurement(variant, "footprint")
        closure = data.get("dependency_closure") if data else None
        if not closure or is_not_measured(closure):
            return Cell(text=raw.missing_reason(variant, closure))
        return Cell(values=[closure["total_bytes"] / MB], flag=f"{closure['distributions']} distributions")

    def image(field_name: str, scale: float = 1.0, which: str = "image") -> Callable[[str], Cell]:
        def cell(variant: str) -> Cell:
            data = raw.measurement(variant, "footprint")
            image = data.get(which) if data else None
            if not image or is_not_measured(image):
                if image is None and data is not None and data.get("kind") != "compose":
                    return Cell(text="n/a (images: compose runner only)")
                return Cell(text=raw.missing_reason(variant, image))
            if field_name == "tools":
                if not image.get("has_shell", True):
                    return Cell(text="no /bin/sh (tools not probed)")
                return Cell(text=", ".join(image["tools"]) or "none found")
            return Cell(values=[image[field_name] / scale])

        return cell

    def artifacts(variant: str) -> Cell:
        data = raw.measurement(variant, "footprint")
        artifacts = data.get("artifacts") if data else None
        if not artifacts or artifacts.get("total_bytes") is None:
            return Cell(
                text=raw.missing_reason(variant, artifacts) if artifacts is None else "n/a (none declared)"
            )
        return Cell(values=[artifacts["total_bytes"] / MB])

    return [
        Row(
            "footprint",
            "footprint.closure_mb",
            "installed dependency closure (local runner)",
            "MB",
            "lower",
            _cells(raw, closure),
            spread_of="one measurement",
        ),
        Row(
            "footprint",
            "footprint.image_mb",
            "image size",
            "MB",
            "lower",
            _cells(raw, image("size_bytes", MB)),
            spread_of="one measurement",
        ),
        Row(
            "footprint",
            "footprint.image_layers",
            "image layers",
            "count",
            "lower",
            _cells(raw, image("layers")),
            spread_of="one measurement",
        ),
        Row(
            "footprint",
            "footprint.image_tools",
            "tools in the image",
            "",
            None,
            _cells(raw, image("tools")),
            spread_of="one measurement",
        ),
        *[
            Row(
                "footprint",
                f"footprint.fat_image_{key}",
                label,
                unit,
                better,
                _cells(raw, image(field_name, scale, "fat_image")),
                spread_of="one measurement",
            )
            for key, field_name, scale, label, unit, better in (
                ("mb", "size_bytes", MB, "fat (dev) image size, for comparison", "MB", "lower"),
                ("layers", "layers", 1.0, "fat (dev) image layers", "count", "lower"),
                ("tools", "tools", 1.0, "tools in the fat (dev) image", "", None),
            )
        ],
        Row(
            "footprint",
            "footprint.artifacts_mb",
            "model artifacts",
            "MB",
            "lower",
            _cells(raw, artifacts),
            spread_of="one measurement",
        ),
    ]


def accuracy_section(raw: RawRun) -> list[Row]:
    def top1(variant: str) -> Cell:
        data = raw.measurement(variant, "accuracy")
        if data is None or is_not_measured(data) or data.get("top1") is None:
            return Cell(text=raw.missing_reason(variant, data))
        flag = f"{data['correct']}/{data['images']} images" + (
            f", {data['errors']} errors" if data["errors"] else ""
        )
        return Cell(values=[100.0 * data["top1"]], flag=flag)

    def model_hash(variant: str) -> Cell:
        data = raw.measurement(variant, "info")
        if data is None or is_not_measured(data):
            return Cell(text=raw.missing_reason(variant, data))
        info = data["info"]
        found = (
            info.get("model_hash") or info.get("model", {}).get("hash") if isinstance(info, dict) else None
        )
        return Cell(text=str(found) if found else "n/a (/info has no model_hash)")

    return [
        Row(
            "accuracy",
            "accuracy.top1",
            "top-1 accuracy over HTTP (held-out digits)",
            "%",
            "higher",
            _cells(raw, top1),
            spread_of="one pass",
        ),
        Row(
            "accuracy",
            "info.model_hash",
            "model hash (from /info)",
            "",
            None,
            _cells(raw, model_hash),
            spread_of="one pass",
        ),
    ]


from bench.report import analysis_sections  # noqa: E402  (its rows are built from the types above)

SECTIONS: list[Section] = [
    load_section,
    *analysis_sections.SECTIONS,
    startup_section,
    footprint_section,
    accuracy_section,
]


def _apply_ratios(rows: list[Row], baseline: str) -> None:
    for row in rows:
        base = row.cells.get(baseline)
        if base is None or base.text is not None or row.better is None:
            continue
        for variant, cell in row.cells.items():
            if variant != baseline and cell.text is None:
                cell.ratio = ratio(cell.median, base.median)


def _notes(raw: RawRun) -> list[str]:
    run = raw.run
    notes = [
        f"Every figure is the median over {raw.profile['repeats']} repeat(s) (a fresh service each)"
        " with [min-max]; startup rows summarize the individual starts.",
        "Latency percentiles are over successful requests of the measured window (linear interpolation);"
        " failures are counted separately.",
        f"×N is the ratio to the baseline ({run['baseline']}) for that row;"
        " ↑ higher is better, ↓ lower is better.",
        f"Core pinning: {run['pinning']['note']}.",
        "Service RSS sums the process tree (shared pages of several workers count more than once).",
        *(
            [
                "Compose runner: service CPU and memory are the container's, from the engine's stats"
                " (memory = usage minus inactive page cache, as `docker stats` shows it); start to ready"
                f" is {run['runner'].get('startup_clock', 'container start -> ready')}; the served image"
                " is the slim one, the fat (dev) image is inspected for comparison only."
            ]
            if run["runner"].get("runner") == "compose"
            else []
        ),
        "Installed dependency closure: sizes of the files installed by each distribution reachable from the"
        " variant's requirements file, in the bench's virtual environment (not an image).",
    ]
    return notes + analysis_sections.notes(raw)


# Cell flags that also go to the report's Flags list (what a reader must not miss).
FLAGGED_WORDS = ("saturated", "failed", "behind its schedule", "unstable", "never stable", "SLO was")


def _flags(raw: RawRun, rows: list[Row]) -> list[str]:
    flags = []
    for row in rows:
        for variant, cell in row.cells.items():
            if cell.flag and any(word in cell.flag for word in FLAGGED_WORDS):
                flags.append(f"{variant}, {row.section}: {cell.flag}")
    for variant in raw.variants:
        flags += [f"{variant}: {error.splitlines()[0]}" for error in raw.errors(variant)]
    return sorted(set(flags))


def build_table(run_dir: Path) -> Table:
    raw = RawRun(run_dir)
    rows = [row for section in SECTIONS for row in section(raw)]
    _apply_ratios(rows, raw.run["baseline"])
    return Table(raw.variants, raw.run["baseline"], rows, _notes(raw), raw.run, _flags(raw, rows))
