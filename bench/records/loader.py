"""Read one run directory (run.json + raw/) into typed records: the only place raw files are parsed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from bench.analysis.approximation import GATES_FILE, ApproximationGates
from bench.payloads import inprocess_dir, payload_key
from bench.records.models import (
    Accuracy,
    Ceiling,
    Floor,
    Footprint,
    InProcessPayload,
    JpegDraft,
    LoadLevel,
    LoadWindow,
    MachineSpeed,
    NotMeasured,
    OpenLoopRun,
    OpenLoopWindow,
    OperatorProfile,
    Resources,
    RunInfo,
    ServiceInfo,
    SkippedVariant,
    SloSearch,
    Startup,
    StepError,
    Sweep,
)
from bench.results import RunDir, is_not_measured, read_json

Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], data: Any) -> Model | NotMeasured:
    """A raw file's JSON as ``model``, or as :class:`NotMeasured` when the collector wrote a reason."""
    if is_not_measured(data):
        return NotMeasured.model_validate(data)
    return model.model_validate(data)


def read_optional(model: type[Model], path: Path) -> Model | NotMeasured | None:
    return parse(model, read_json(path)) if path.is_file() else None


@dataclass(frozen=True)
class PayloadRepeat:
    """One repeat of one in-process payload: its ceiling and its floor (None where the file is absent)."""

    repeat: int
    ceiling: Ceiling | NotMeasured | None
    floor: Floor | NotMeasured | None


@dataclass
class VariantRecords:
    """Everything the run recorded for one variant; absent files are None or empty lists."""

    name: str
    levels: list[LoadLevel] = field(default_factory=list)
    ceilings: list[Ceiling | NotMeasured] = field(default_factory=list)
    open_runs: list[OpenLoopRun] = field(default_factory=list)
    slo: SloSearch | None = None
    sweep: Sweep | NotMeasured | None = None
    operator_profile: OperatorProfile | NotMeasured | None = None
    jpeg_draft: JpegDraft | NotMeasured | None = None
    approximation: ApproximationGates | NotMeasured | None = None  # gates vs the variant it approximates
    startup: Startup | NotMeasured | None = None
    footprint: Footprint | NotMeasured | None = None
    accuracy: Accuracy | NotMeasured | None = None
    info: ServiceInfo | NotMeasured | None = None
    errors: list[StepError] = field(default_factory=list)
    inprocess: dict[str, list[PayloadRepeat]] = field(default_factory=dict)  # by payload key, repeat order
    machine: dict[int, MachineSpeed] = field(default_factory=dict)  # by repeat: calibration before its load

    def at(self, users: int) -> list[LoadLevel]:
        """The repeats of one concurrency level, in repeat order."""
        return [level for level in self.levels if level.users == users]

    def measured_ceilings(self) -> list[Ceiling]:
        return [ceiling for ceiling in self.ceilings if isinstance(ceiling, Ceiling)]


@dataclass
class RunRecords:
    root: Path
    info: RunInfo
    variants: dict[str, VariantRecords]
    skipped: list[SkippedVariant]
    run_json: dict[str, Any]  # run.json as written, for report.json's "run"

    @property
    def names(self) -> list[str]:
        return list(self.variants)

    @property
    def baseline(self) -> str:
        return self.info.baseline

    @property
    def inprocess_payloads(self) -> list[InProcessPayload]:
        return measured_payloads(self.info)


def measured_payloads(info: RunInfo) -> list[InProcessPayload]:
    """The payloads of the in-process ceiling and floor; a run from before there were several measured its
    primary payload only."""
    if info.inprocess_payloads:
        return info.inprocess_payloads
    return [InProcessPayload(name=payload_key(info.profile.payload), primary=True)]


def _payload_repeats(run_dir: RunDir, variant: str, info: RunInfo) -> dict[str, list[PayloadRepeat]]:
    found: dict[str, list[PayloadRepeat]] = {}
    for payload in measured_payloads(info):
        repeats = []
        for repeat in range(info.profile.repeats):
            folder = inprocess_dir(run_dir, variant, repeat, payload.name, payload.primary)
            ceiling = read_optional(Ceiling, folder / "ceiling.json")
            floor = read_optional(Floor, folder / "floor.json")
            if ceiling is not None or floor is not None:
                repeats.append(PayloadRepeat(repeat, ceiling, floor))  # type: ignore[arg-type]
        found[payload.name] = repeats
    return found


def _levels(run_dir: RunDir, variant: str, info: RunInfo) -> list[LoadLevel]:
    found = []
    for repeat in range(info.profile.repeats):
        for users in info.profile.concurrency_levels:
            folder = run_dir.load_dir(variant, repeat, users)
            if not (folder / "window.json").is_file():
                continue
            found.append(
                LoadLevel(
                    repeat=repeat,
                    users=users,
                    window=LoadWindow.model_validate(read_json(folder / "window.json")),
                    latencies=read_json(folder / "latencies.json"),
                    resources=read_optional(Resources, folder / "resources.json"),
                )
            )
    return found


def _open_runs(run_dir: RunDir, variant: str, info: RunInfo) -> list[OpenLoopRun]:
    found = []
    for repeat in range(info.profile.open_runs):
        folder = run_dir.openloop_dir(variant, repeat)
        if (folder / "window.json").is_file():
            found.append(
                OpenLoopRun(
                    repeat=repeat,
                    window=OpenLoopWindow.model_validate(read_json(folder / "window.json")),
                    latencies=read_json(folder / "latencies.json"),
                    requests=read_json(folder / "requests.json"),
                )
            )
    return found


def _machine_speeds(run_dir: RunDir, variant: str, info: RunInfo) -> dict[int, MachineSpeed]:
    """The calibrations that were measured (a probe that failed wrote why, and counts as absent)."""
    found = {}
    for repeat in range(info.profile.repeats):
        speed = read_optional(MachineSpeed, run_dir.machine_speed_file(variant, repeat))
        if isinstance(speed, MachineSpeed):
            found[repeat] = speed
    return found


def load_variant(run_dir: RunDir, name: str, info: RunInfo) -> VariantRecords:
    analysis = run_dir.analysis_dir(name)
    ceilings = [
        parse(Ceiling, read_json(path))
        for repeat in range(info.profile.repeats)
        if (path := run_dir.ceiling_dir(name, repeat) / "ceiling.json").is_file()
    ]
    slo_file = run_dir.slo_dir(name) / "search.json"
    errors_dir = run_dir.variant_dir(name) / "errors"
    return VariantRecords(
        name=name,
        levels=_levels(run_dir, name, info),
        ceilings=ceilings,  # type: ignore[arg-type]
        open_runs=_open_runs(run_dir, name, info),
        slo=SloSearch.model_validate(read_json(slo_file)) if slo_file.is_file() else None,
        sweep=read_optional(Sweep, analysis / "sweep.json"),
        operator_profile=read_optional(OperatorProfile, analysis / "profile.json"),
        jpeg_draft=read_optional(JpegDraft, analysis / "jpeg_draft.json"),
        approximation=read_optional(ApproximationGates, analysis / GATES_FILE),
        startup=read_optional(Startup, run_dir.measurement(name, "startup")),
        footprint=read_optional(Footprint, run_dir.measurement(name, "footprint")),
        accuracy=read_optional(Accuracy, run_dir.measurement(name, "accuracy")),
        info=read_optional(ServiceInfo, run_dir.measurement(name, "info")),
        errors=[StepError.model_validate(read_json(path)) for path in sorted(errors_dir.glob("*.json"))],
        inprocess=_payload_repeats(run_dir, name, info),
        machine=_machine_speeds(run_dir, name, info),
    )


def load_run(root: Path | RunDir) -> RunRecords:
    """Every raw file of a run directory as typed records (readable while the run is still going)."""
    run_dir = root if isinstance(root, RunDir) else RunDir(Path(root))
    run_json = read_json(run_dir.run_file)
    info = RunInfo.model_validate(run_json)
    skipped_file = run_dir.skipped_variants_file
    skipped = (
        [SkippedVariant.model_validate(entry) for entry in read_json(skipped_file)]
        if skipped_file.is_file()
        else []
    )
    variants = {entry.name: load_variant(run_dir, entry.name, info) for entry in info.variants}
    return RunRecords(run_dir.root, info, variants, skipped, run_json)
