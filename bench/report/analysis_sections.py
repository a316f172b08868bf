"""The analysis rows of the one table: in-process ceiling and stage breakdown, serving efficiency, open loop
at a common offered load (with the queueing model's prediction beside it) and max RPS under the SLO.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.analysis.queueing import max_rate_under_slo, predicted_quantile_ms
from bench.report import analysis_data as data
from bench.report.aggregate import Cell, RawRun, Row
from bench.results import is_not_measured
from bench.stats import percentile

STAGES = ("decode", "preprocess", "inference", "postprocess")
IMPLAUSIBLE_EFFICIENCY = "unstable ceiling: HTTP beat the in-process loop, which was measured at another time"


def _rows(raw: RawRun, section: str, specs: list[tuple[str, str, str, str | None]],
          cell: Callable[[str, str], Cell], spread_of: str) -> list[Row]:  # fmt: skip
    return [
        Row(section, key, label, unit, better, {v: cell(v, key) for v in raw.variants}, spread_of=spread_of)
        for key, label, unit, better in specs
    ]


def ceiling_section(raw: RawRun) -> list[Row]:
    threads = {c.get("threads") for v in raw.variants for c in data.ceilings(raw, v) if "threads" in c}
    section = (
        "in-process ceiling: the service's own decode -> predict -> response code in one process, no HTTP"
        f" ({'/'.join(map(str, sorted(threads))) or '?'} thread(s), service cores)"
    )
    specs: list[tuple[str, str, str, str | None]] = [
        ("ceiling.rps", "requests/s in one process", "req/s", "higher"),
        ("ceiling.p50", "latency p50", "ms", "lower"),
        ("ceiling.p90", "latency p90", "ms", "lower"),
        ("ceiling.p99", "latency p99", "ms", "lower"),
        ("ceiling.min", "latency min", "ms", "lower"),
        ("ceiling.max", "latency max", "ms", "lower"),
        *[(f"ceiling.stage.{stage}", f"stage: {stage} (mean)", "ms", "lower") for stage in STAGES],
        ("ceiling.peak_rss_mb", "peak RSS of the process", "MB", "lower"),
        ("efficiency", "serving efficiency: best closed-loop HTTP req/s / ceiling", "%", "higher"),
    ]

    def cell(variant: str, key: str) -> Cell:
        results = data.ceilings(raw, variant)
        measured = [result for result in results if not is_not_measured(result)]
        if not measured:
            return Cell(text=raw.missing_reason(variant, results[0] if results else None))
        if key == "efficiency":
            http = data.closed_best_per_repeat(raw, variant)
            pairs = list(zip(http, (result["throughput_rps"] for result in measured), strict=False))
            if not pairs:
                return Cell(text=raw.missing_reason(variant))
            values = [100.0 * served / ceiling for served, ceiling in pairs]
            implausible = any(value > 100.0 for value in values)
            return Cell(values=values, flag=IMPLAUSIBLE_EFFICIENCY if implausible else None)
        flag = None
        if key == "ceiling.stage.preprocess" and measured[0].get("runtime") == "onnxruntime":
            flag = "fused into the graph: counted in inference"
        return Cell(values=[_ceiling_value(result, key) for result in measured], flag=flag)

    return _rows(raw, section, specs, cell, "repeats (a fresh process each)")


def _ceiling_value(result: dict[str, Any], key: str) -> float:
    name = key.removeprefix("ceiling.")
    if name == "rps":
        return result["throughput_rps"]
    if name == "peak_rss_mb":
        return result["peak_rss_mb"]
    if name.startswith("stage."):
        return result["stages_ms"][name.removeprefix("stage.")]
    return result["latency_ms"][name]


def openloop_section(raw: RawRun) -> list[Row]:
    chosen = data.open_rate(raw)
    if chosen is None or not raw.profile.get("open_runs"):
        return []
    rate = chosen["rate"]
    section = (
        f"open loop at a common offered load: {rate:g} req/s Poisson ({chosen['basis']}); latency from each"
        " request's scheduled send time"
    )
    specs: list[tuple[str, str, str, str | None]] = [
        ("open.rps", "achieved requests/s", "req/s", "higher"),
        ("open.p50", "latency p50 (from schedule)", "ms", "lower"),
        ("open.p90", "latency p90 (from schedule)", "ms", "lower"),
        ("open.p99", "latency p99 (from schedule)", "ms", "lower"),
        ("open.p99.9", "latency p99.9 (from schedule)", "ms", "lower"),
        ("open.max", "latency max (from schedule)", "ms", "lower"),
        ("open.service_p99", "p99 from the actual send (uncorrected)", "ms", "lower"),
        ("open.late", "requests sent late (> 10 ms after schedule)", "%", "lower"),
        ("open.model_p99", f"queueing model {data.QUEUEING_MODEL} p99 at this rate", "ms", None),
    ]

    def cell(variant: str, key: str) -> Cell:
        runs = data.open_runs(raw, variant)
        if not runs:
            return Cell(text=raw.missing_reason(variant))
        if key == "open.model_p99":
            return _model_p99_cell(raw, variant, rate)
        values = [_open_value(run, key) for run in runs]
        flag = None
        if key == "open.late" and any(run["window"]["adherence"]["behind_schedule"] for run in runs):
            flag = "generator fell behind its schedule"
        if key == "open.rps" and not all(run["window"]["stability"]["stable"] for run in runs):
            flag = "unstable: " + next(
                run["window"]["stability"]["reason"]
                for run in runs
                if not run["window"]["stability"]["stable"]
            )
        return Cell(values=values, flag=flag)

    return _rows(raw, section, specs, cell, "open-loop runs")


def _open_value(run: dict[str, Any], key: str) -> float:
    window, latencies = run["window"], run["latencies"]
    name = key.removeprefix("open.")
    if name == "rps":
        return window["successes"] / max(window["duration_s"], 1e-9)
    if name == "late":
        return 100.0 * window["adherence"]["late_fraction"]
    if name == "service_p99":
        return percentile([r["service_ms"] for r in run["requests"] if r["ok"]], 99.0)
    if name == "max":
        return max(latencies) if latencies else float("nan")
    return percentile(latencies, float(name.removeprefix("p")))


def _model_p99_cell(raw: RawRun, variant: str, rate: float) -> Cell:
    service_ms = data.service_time_ms(raw, variant)
    if not data.finite(service_ms):
        return Cell(text="n/a (no concurrency-1 latency to take the service time from)")
    count = data.servers(raw, variant)
    predicted = predicted_quantile_ms(data.QUEUEING_MODEL, rate, service_ms, count)
    basis = f"S = {service_ms:.1f} ms (mean at concurrency 1), c = {count}"
    if not data.finite(predicted):
        return Cell(text=f"saturated ({basis})")
    return Cell(values=[predicted], flag=basis)


def slo_section(raw: RawRun) -> list[Row]:
    slo_ms = raw.profile.get("slo_ms", 100.0)
    section = f"max sustainable throughput under the SLO p99 <= {slo_ms:g} ms (Poisson, bounded bisection)"
    specs: list[tuple[str, str, str, str | None]] = [
        ("slo.max_rps", "max requests/s with p99 within the SLO", "req/s", "higher"),
        ("slo.probes", "probes run (repeats of unstable ones included)", "count", None),
        ("slo.model_max_rps", f"queueing model {data.QUEUEING_MODEL} prediction", "req/s", None),
    ]

    def cell(variant: str, key: str) -> Cell:
        search = data.slo_search(raw, variant)
        if search is None:
            if not raw.profile.get("slo_search"):
                return Cell(text="n/a (not in this profile: --profile full or --slo-search)")
            return Cell(text=raw.missing_reason(variant))
        if key == "slo.max_rps":
            return Cell(values=[search["max_rps"]], flag="; ".join(search["flags"]) or None)
        if key == "slo.probes":
            return Cell(values=[float(sum(probe["attempts"] for probe in search["probes"]))])
        service_ms = data.service_time_ms(raw, variant)
        if not data.finite(service_ms):
            return Cell(text="n/a (no concurrency-1 latency)")
        return Cell(
            values=[max_rate_under_slo(data.QUEUEING_MODEL, service_ms, slo_ms, data.servers(raw, variant))]
        )

    return _rows(raw, section, specs, cell, "one search")


JPEG_DRAFT_DIGIT_ROWS: list[tuple[str, str, str, str | None]] = [
    ("jpeg_draft.top1_off", "digits top-1, draft off", "%", "higher"),
    ("jpeg_draft.top1_on", "digits top-1, draft on", "%", "higher"),
    ("jpeg_draft.accuracy_delta", "JPEG draft: top-1 change (on - off)", "pp", None),
    ("jpeg_draft.agreement", "top-1 agreement, draft on vs off", "%", None),
    ("jpeg_draft.max_delta_p", "max |delta p| on vs off (any image, any class)", "", None),
    ("jpeg_draft.decode_off", "digits decode p50, draft off", "ms", "lower"),
    ("jpeg_draft.decode_on", "digits decode p50, draft on", "ms", "lower"),
    ("jpeg_draft.speedup", "JPEG draft: digits decode speed-up (off / on)", "x", None),
]


def _jpeg_draft_digit_value(result: dict[str, Any], key: str) -> float:
    digits = result["digits"]
    name = key.removeprefix("jpeg_draft.")
    if name == "accuracy_delta":
        return 100.0 * (digits["top1_on"] - digits["top1_off"])
    if name == "speedup":
        return digits["decode_ms_off"] / digits["decode_ms_on"]
    if name == "max_delta_p":
        return digits["max_abs_delta_p"]
    if name.startswith("decode_"):
        return digits[f"decode_ms_{name.removeprefix('decode_')}"]
    return 100.0 * digits["top1_agreement" if name == "agreement" else name]


def _photo_label(photo: dict[str, Any]) -> str:
    size_off, size_on = ("x".join(map(str, photo[f"size_{mode}"])) for mode in ("off", "on"))
    shrink = f"{size_off} -> {size_on}" if size_off != size_on else f"{size_off}, draft not applied"
    return f"{photo['file']} ({shrink})"


def jpeg_draft_section(raw: RawRun) -> list[Row]:
    results = {v: data.analysis(raw, v, "jpeg_draft") for v in raw.variants}
    measured = {v: r for v, r in results.items() if r is not None and not is_not_measured(r)}
    if not measured:
        return []
    first = next(iter(measured.values()))
    digits = first["digits"]
    section = (
        f"JPEG_DRAFT (opt-in decode shortcut), in process: {digits['images']} held-out digits upscaled to a"
        f" {digits['short_side']} px shorter side, JPEG quality {digits['quality']}, each decoded with the"
        f" draft off and on (DCT-scaled to a shorter side >= {first['draft_min_side']} px) and predicted"
    )

    def missing(variant: str) -> Cell:
        return Cell(text=raw.missing_reason(variant, results[variant]))

    def digit_cell(variant: str, key: str) -> Cell:
        if variant not in measured:
            return missing(variant)
        return Cell(values=[_jpeg_draft_digit_value(measured[variant], key)])

    rows = _rows(raw, section, JPEG_DRAFT_DIGIT_ROWS, digit_cell, "one pass over the digits")
    for photo in first["photos"]:
        for field, stage in (("decode", "decode"), ("total", "decode + predict")):
            for mode in ("off", "on"):
                name = f"{field}_{mode}_ms"
                cells = {
                    v: _photo_cell(measured[v], photo["file"], name) if v in measured else missing(v)
                    for v in raw.variants
                }
                label = f"{_photo_label(photo)}: {stage} p50, draft {mode}"
                key = f"jpeg_draft.{photo['file']}.{name}"
                spread_of = f"median of {photo['decodes']} rounds"
                rows.append(Row(section, key, label, "ms", "lower", cells, spread_of=spread_of))
    return rows


def _photo_cell(result: dict[str, Any], file: str, name: str) -> Cell:
    found = [photo for photo in result["photos"] if photo["file"] == file]
    return Cell(values=[found[0][name]]) if found else Cell(text="n/a (photo not measured)")


def notes(raw: RawRun) -> list[str]:
    lines = [
        "In-process ceiling: the variant's own Predictor and serving_core's decode and response code in one"
        " process pinned to the service cores with the service's threads, warmup excluded; serving efficiency"
        " pairs each repeat's best closed-loop HTTP throughput with that repeat's ceiling.",
    ]
    if raw.profile.get("open_runs"):
        lines.append(
            "Open loop: one Locust scheduler sends on a seeded Poisson schedule (at most 256 outstanding);"
            " latency runs from the scheduled send time, so a stalled service cannot hide behind a slowed"
            " generator (coordinated omission). A run is stable when its last 3 windows' throughput and p99"
            f" agree within 10%. Queueing model: {data.QUEUEING_MODEL} with S = the mean latency at"
            " concurrency 1 and c = workers x inference concurrency from /info."
        )
    if any(data.analysis(raw, variant, "jpeg_draft") for variant in raw.variants):
        lines.append(
            "JPEG_DRAFT: serving_core's decode with the service's own draft rule off and on"
            " (JPEG_DRAFT=false/true), one process per variant; the digit JPEGs are made in memory (Pillow"
            " LANCZOS upscale), each decoded and predicted alone once per mode; photo rows alternate off"
            " and on rounds. The draft changes the pixels the model sees, so it is off by default."
        )
    return lines


SECTIONS = [ceiling_section, openloop_section, slo_section, jpeg_draft_section]
