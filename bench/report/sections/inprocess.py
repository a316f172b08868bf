"""In-process rows: the ceiling with its stage breakdown, serving efficiency, the ceiling against its floor
per payload, and the JPEG_DRAFT effect."""

from __future__ import annotations

from bench.records import NotMeasured, RunRecords, VariantRecords
from bench.records.derived import best_closed_rps_per_repeat, floor_multiples
from bench.records.loader import PayloadRepeat
from bench.records.models import Ceiling, Floor, InProcessPayload, JpegDraft, JpegDraftDigits, JpegDraftPhoto
from bench.report.flags import Flag, FlagCode, info, warning
from bench.report.sections.common import RowSpec, missing, spec_rows
from bench.report.table import Cell, Row

STAGES = ("decode", "preprocess", "inference", "postprocess")
IMPLAUSIBLE_EFFICIENCY = "unstable ceiling: HTTP beat the in-process loop, which was measured at another time"


def ceiling_section(run: RunRecords) -> list[Row]:
    threads = {
        c.threads for v in run.variants.values() for c in v.measured_ceilings() if c.threads is not None
    }
    section = (
        "in-process ceiling: the service's own decode -> predict -> response code in one process, no HTTP"
        f" ({'/'.join(map(str, sorted(threads))) or '?'} thread(s), service cores)"
    )
    specs: list[RowSpec] = [
        ("ceiling.rps", "requests/s in one process", "req/s", "higher"),
        ("ceiling.p50", "latency p50", "ms", "lower"),
        ("ceiling.p90", "latency p90", "ms", "lower"),
        ("ceiling.p99", "latency p99", "ms", "lower"),
        ("ceiling.min", "latency min", "ms", "lower"),
        ("ceiling.max", "latency max", "ms", "lower"),
        *[(f"ceiling.stage.{stage}", f"stage: {stage} (mean)", "ms", "lower") for stage in STAGES],
        ("ceiling.peak_rss_mb", "peak RSS of the process", "MB", "lower"),
        ("efficiency", "serving efficiency: best closed-loop HTTP req/s / ceiling", "%", "higher"),
        ("efficiency.c1", "serving efficiency at concurrency 1: HTTP c1 req/s / ceiling", "%", "higher"),
    ]
    primary = _primary(run).name

    def cell(records: VariantRecords, key: str) -> Cell:
        if key == "efficiency.c1":
            return _c1_efficiency_cell(records, records.inprocess.get(primary, []))
        return _ceiling_cell(records, key)

    return spec_rows(run, section, specs, cell, "repeats (a fresh process each)")


def _primary(run: RunRecords) -> InProcessPayload:
    payloads = run.inprocess_payloads
    return next((payload for payload in payloads if payload.primary), payloads[0])


def _efficiency_cell(values: list[float]) -> Cell:
    """Serving efficiencies in %; above 100 the ceiling, measured at another time, is not to be trusted."""
    implausible = any(value > 100.0 for value in values)
    return Cell(
        values=values,
        flag=warning(FlagCode.UNSTABLE_CEILING, IMPLAUSIBLE_EFFICIENCY) if implausible else None,
    )


def _c1_efficiency_cell(records: VariantRecords, repeats: list[PayloadRepeat]) -> Cell:
    """Each repeat's concurrency-1 HTTP throughput over that same repeat's ceiling (paired by repeat)."""
    served = {level.repeat: level.window.throughput_rps for level in records.at(1)}
    ceilings = {r.repeat: r.ceiling for r in repeats if isinstance(r.ceiling, Ceiling)}
    if not ceilings:
        return missing(records, next((r.ceiling for r in repeats), None))
    values = [100.0 * served[n] / c.throughput_rps for n, c in ceilings.items() if n in served]
    if not values:
        return Cell(text="n/a (no concurrency-1 level in the same repeats)")
    return _efficiency_cell(values)


def _ceiling_cell(records: VariantRecords, key: str) -> Cell:
    measured = records.measured_ceilings()
    if not measured:
        return missing(records, records.ceilings[0] if records.ceilings else None)
    if key == "efficiency":
        pairs = list(
            zip(best_closed_rps_per_repeat(records), (c.throughput_rps for c in measured), strict=False)
        )
        if not pairs:
            return missing(records)
        return _efficiency_cell([100.0 * served / ceiling for served, ceiling in pairs])
    flag = None
    if key == "ceiling.stage.preprocess" and measured[0].preprocessing_in_graph:
        flag = info(FlagCode.FUSED_PREPROCESSING, "fused into the graph: counted in inference")
    return Cell(values=[_ceiling_value(result, key) for result in measured], flag=flag)


def _ceiling_value(result: Ceiling, key: str) -> float:
    name = key.removeprefix("ceiling.")
    if name == "rps":
        return result.throughput_rps
    if name == "peak_rss_mb":
        return result.peak_rss_mb if result.peak_rss_mb is not None else float("nan")
    if name.startswith("stage."):
        return result.stages_ms[name.removeprefix("stage.")]
    return result.latency_ms[name]


FLOOR_DEFINITION = (
    "floor = decode_image of the payload alone (the variant's decode settings: DCT-scaled with JPEG_DRAFT)"
    " + classifier.onnx alone ({shape} float32, ONNX Runtime, 1 intra-op thread), medians, same process"
    " kind and cores as the ceiling; multiple = ceiling median ms/request / floor"
)
# suffix, label, unit, better
FLOOR_ROWS: list[RowSpec] = [
    ("ms", "in-process ms/request (ceiling median)", "ms", "lower"),
    ("stage.decode", "ceiling stage: body + decode (mean)", "ms", "lower"),
    ("stage.model", "ceiling stage: preprocess + inference (mean)", "ms", "lower"),
    ("floor.decode", "floor part: decode alone (median)", "ms", "lower"),
    ("floor.network", "floor part: network alone (median)", "ms", "lower"),
    ("floor", "floor: decode alone + network alone", "ms", "lower"),
    ("multiple", "multiple of the floor: ms/request / floor (1 = at the floor)", "x", None),
]


def floor_section(run: RunRecords) -> list[Row]:
    """Variant x payload: the ceiling's ms/request (x ratio to the baseline), its floor and the multiple."""
    shapes = [
        floor.network_input
        for records in run.variants.values()
        for repeats in records.inprocess.values()
        for repeat in repeats
        if isinstance(floor := repeat.floor, Floor) and floor.network_input
    ]
    shape = "x".join(map(str, shapes[0])) if shapes else "1x3xCxC (C: crop size)"
    section = f"in-process ceiling vs its floor, per payload: {FLOOR_DEFINITION.format(shape=shape)}"
    rows = []
    for payload in run.inprocess_payloads:
        specs = [(f"inprocess.{payload.name}.{suffix}", f"{_payload_label(payload)}: {label}", unit, better)
                 for suffix, label, unit, better in FLOOR_ROWS]  # fmt: skip

        def cell(records: VariantRecords, key: str, name: str = payload.name) -> Cell:
            return _floor_cell(
                records, records.inprocess.get(name, []), key.removeprefix(f"inprocess.{name}.")
            )

        rows += spec_rows(run, section, specs, cell, "repeats (a fresh process each)")
    return rows


def _payload_label(payload: InProcessPayload) -> str:
    primary = ", HTTP payload" if payload.primary else ""
    if payload.width is None or payload.height is None:
        return f"{payload.name}{primary}"
    return f"{payload.name} ({payload.width}x{payload.height}{primary})"


def _floor_cell(records: VariantRecords, repeats: list[PayloadRepeat], name: str) -> Cell:
    ceilings = [r.ceiling for r in repeats if isinstance(r.ceiling, Ceiling)]
    floors = [r.floor for r in repeats if isinstance(r.floor, Floor)]
    if name == "multiple":
        values = floor_multiples(repeats)
        return Cell(values=values) if values else _absent(records, repeats)
    if name.startswith("floor"):
        if not floors:
            return _absent(records, repeats, floor=True)
        part = name.removeprefix("floor").removeprefix(".")
        values = [f.floor_ms if not part else getattr(f, f"{part}_ms") for f in floors]
        return Cell(values=values, flag=_draft_flag(floors[0]) if part == "decode" else None)
    if not ceilings:
        return _absent(records, repeats)
    if name == "ms":
        return Cell(values=[c.median_ms for c in ceilings])
    if name == "stage.decode":
        return Cell(values=[c.stages_ms["decode"] for c in ceilings])
    return Cell(values=[c.stages_ms["preprocess"] + c.stages_ms["inference"] for c in ceilings])


def _absent(records: VariantRecords, repeats: list[PayloadRepeat], floor: bool = False) -> Cell:
    """n/a with the job's own reason (external service, say) when it wrote one."""
    own = [r.floor if floor else r.ceiling for r in repeats]
    reasons = [data for data in own + [r.floor for r in repeats] if isinstance(data, NotMeasured)]
    return missing(records, reasons[0] if reasons else None)


def _draft_flag(floor: Floor) -> Flag | None:
    if floor.draft_min_side is None or not floor.decoded_size:
        return None
    size = "x".join(map(str, floor.decoded_size))
    return info(FlagCode.DRAFT_DECODE, f"JPEG_DRAFT: DCT-scaled decode to {size}")


JPEG_DRAFT_DIGIT_ROWS: list[RowSpec] = [
    ("jpeg_draft.top1_off", "digits top-1, draft off", "%", "higher"),
    ("jpeg_draft.top1_on", "digits top-1, draft on", "%", "higher"),
    ("jpeg_draft.accuracy_delta", "JPEG draft: top-1 change (on - off)", "pp", None),
    ("jpeg_draft.agreement", "top-1 agreement, draft on vs off", "%", None),
    ("jpeg_draft.max_delta_p", "max |delta p| on vs off (any image, any class)", "", None),
    ("jpeg_draft.decode_off", "digits decode p50, draft off", "ms", "lower"),
    ("jpeg_draft.decode_on", "digits decode p50, draft on", "ms", "lower"),
    ("jpeg_draft.speedup", "JPEG draft: digits decode speed-up (off / on)", "x", None),
]


def _jpeg_draft_digit_value(digits: JpegDraftDigits, key: str) -> float:
    name = key.removeprefix("jpeg_draft.")
    if name == "accuracy_delta":
        return 100.0 * (digits.top1_on - digits.top1_off)
    if name == "speedup":
        return digits.decode_ms_off / digits.decode_ms_on
    if name == "max_delta_p":
        return digits.max_abs_delta_p
    if name.startswith("decode_"):
        return getattr(digits, f"decode_ms_{name.removeprefix('decode_')}")
    return 100.0 * getattr(digits, "top1_agreement" if name == "agreement" else name)


def _photo_label(photo: JpegDraftPhoto) -> str:
    size_off, size_on = ("x".join(map(str, size)) for size in (photo.size_off, photo.size_on))
    shrink = f"{size_off} -> {size_on}" if size_off != size_on else f"{size_off}, draft not applied"
    return f"{photo.file} ({shrink})"


def jpeg_draft_section(run: RunRecords) -> list[Row]:
    measured = {name: r.jpeg_draft for name, r in run.variants.items() if isinstance(r.jpeg_draft, JpegDraft)}
    if not measured:
        return []
    first = next(iter(measured.values()))
    digits = first.digits
    section = (
        f"JPEG_DRAFT (opt-in decode shortcut), in process: {digits.images} held-out digits upscaled to a"
        f" {digits.short_side} px shorter side, JPEG quality {digits.quality}, each decoded with the"
        f" draft off and on (DCT-scaled to a shorter side >= {first.draft_min_side} px) and predicted"
    )

    def digit_cell(records: VariantRecords, key: str) -> Cell:
        if records.name not in measured:
            return missing(records, records.jpeg_draft)
        return Cell(values=[_jpeg_draft_digit_value(measured[records.name].digits, key)])

    rows = spec_rows(run, section, JPEG_DRAFT_DIGIT_ROWS, digit_cell, "one pass over the digits")
    for photo in first.photos:
        for field, stage in (("decode", "decode"), ("total", "decode + predict")):
            for mode in ("off", "on"):
                name = f"{field}_{mode}_ms"
                cells = {
                    v: _photo_cell(measured[v], photo.file, name)
                    if v in measured
                    else missing(r, r.jpeg_draft)
                    for v, r in run.variants.items()
                }
                label = f"{_photo_label(photo)}: {stage} p50, draft {mode}"
                key = f"jpeg_draft.{photo.file}.{name}"
                spread_of = f"median of {photo.decodes} rounds"
                rows.append(Row(section, key, label, "ms", "lower", cells, spread_of=spread_of))
    return rows


def _photo_cell(result: JpegDraft, file: str, name: str) -> Cell:
    found = [photo for photo in result.photos if photo.file == file]
    return Cell(values=[getattr(found[0], name)]) if found else Cell(text="n/a (photo not measured)")
