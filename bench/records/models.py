"""Pydantic models of every raw file a compare run writes under ``run.json`` and ``raw/``.

The writers (load driver, collectors, runners, in-process jobs) keep writing plain JSON; these models only
read it. Every model keeps unknown keys (``extra="allow"``), and fields the report does not read have
defaults, so an older or trimmed ``raw/`` still loads. A collector that cannot measure something writes
``{"status": "n/a", "reason": ...}`` instead: :class:`NotMeasured`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bench.analysis.slo_search import DEFAULT_SLO_MS
from bench.results import NOT_MEASURED


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class NotMeasured(Record):
    status: Literal["n/a"] = NOT_MEASURED
    reason: str


# --- run.json -----------------------------------------------------------------------------------------


class ProfileInfo(Record):
    """The measurement plan as run.json recorded it (``Profile.to_dict``)."""

    name: str = "?"
    concurrency_levels: list[int] = Field(default_factory=list)
    duration_s: float = 0.0
    requests_per_level: int | None = None
    repeats: int = 0
    open_runs: int = 0
    slo_search: bool = False
    slo_ms: float = DEFAULT_SLO_MS
    payload: str = "photo_medium"  # the primary payload (a name in images/ or a path)


class RunnerInfo(Record):
    runner: str = "?"
    startup_clock: str | None = None


class Pinning(Record):
    note: str = ""
    service_cores: list[int] = Field(default_factory=list)  # empty: not pinned


class GitInfo(Record):
    commit: str | None = None
    dirty: bool | None = None


class SysInfo(Record):
    cpu_model: str = "unknown"
    logical_cores: int | None = None
    cgroup: dict[str, str | None] = Field(default_factory=dict)
    load_average_1m_at_start: float = math.nan
    python: str = "?"
    libraries: dict[str, str | None] = Field(default_factory=dict)
    git: GitInfo = Field(default_factory=GitInfo)


class VariantEntry(Record):
    name: str


class PayloadInfo(Record):
    file: str
    bytes: int | None = None


class InProcessPayload(Record):
    """One entry of run.json's ``inprocess_payloads``: a payload of the in-process ceiling and floor."""

    name: str
    file: str = ""
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    primary: bool = False


class OpenRate(Record):
    """The one open-loop rate every variant was offered, and how it was chosen."""

    rate: float
    basis: str


class RunInfo(Record):
    started_unix: float = 0.0
    finished_unix: float | None = None
    profile: ProfileInfo = Field(default_factory=ProfileInfo)
    runner: RunnerInfo = Field(default_factory=RunnerInfo)
    pinning: Pinning = Field(default_factory=Pinning)
    baseline: str = ""
    variants: list[VariantEntry] = Field(default_factory=list)
    payloads: dict[str, PayloadInfo] = Field(default_factory=dict)
    sysinfo: SysInfo = Field(default_factory=SysInfo)
    open_loop: OpenRate | None = None
    inprocess_payloads: list[InProcessPayload] = Field(default_factory=list)


class SkippedVariant(Record):
    """One entry of ``raw/skipped_variants.json``: a registered variant the run left out, and why."""

    name: str
    reason: str


# --- closed and open loop -----------------------------------------------------------------------------


class LoadWindow(Record):
    """``window.json`` of one closed-loop level (the open-loop one extends it)."""

    users: int = 1
    start_unix: float = 0.0
    duration_s: float
    stopped_by: str | None = None
    requests: int = 0
    successes: int
    failures: int = 0
    errors: dict[str, int] = Field(default_factory=dict)
    request_bytes: float = 0.0
    response_bytes: float = 0.0
    payload_bytes: int | None = None
    generator_cpu_percent: float = math.nan
    generator_saturated: bool = False
    generator_cores: list[int] = Field(default_factory=list)
    host_steal_percent: float = math.nan  # CPU time the hypervisor gave to other guests during the window

    @property
    def throughput_rps(self) -> float:
        """Successful requests per second of the measured window: THE throughput figure."""
        return self.successes / max(self.duration_s, 1e-9)


class Adherence(Record):
    """How late requests left the generator against their schedule (``bench.load.arrivals.Adherence``)."""

    late_fraction: float = 0.0
    late: int = 0
    capped: int = 0
    behind_schedule: bool = False


class StabilityVerdict(Record):
    stable: bool
    reason: str = ""
    windows: list[dict[str, Any]] = Field(default_factory=list)


class OpenLoopWindow(LoadWindow):
    rate: float | None = None
    seed: int | None = None
    max_in_flight: int | None = None
    scheduled: int | None = None
    adherence: Adherence = Field(default_factory=Adherence)
    stability: StabilityVerdict


class OpenLoopRequest(Record):
    """One measured request of ``requests.json``: latency from the schedule, service time from the send."""

    scheduled_s: float
    latency_ms: float
    service_ms: float
    send_lag_ms: float = 0.0
    capped: bool = False
    ok: bool


class ResourceSample(Record):
    t_s: float = 0.0
    t_unix: float
    cpu_percent: float
    rss_bytes: float


class Resources(Record):
    samples: list[ResourceSample]
    measured: dict[str, float] | None = None


class LoadLevel(Record):
    """One repeat of one concurrency level: its window, latencies (ms) and resource samples."""

    repeat: int
    users: int
    window: LoadWindow
    latencies: list[float]
    resources: Resources | NotMeasured | None = None


class OpenLoopRun(Record):
    repeat: int
    window: OpenLoopWindow
    latencies: list[float]
    requests: list[OpenLoopRequest]


class SloProbe(Record):
    rate: float
    p99_ms: float | None = None  # an infinite p99 (nothing answered) is written as null
    achieved_rps: float | None = None
    requests: int | None = None  # None in records written before probes counted their requests
    over_slo: int | None = None
    failures: int = 0
    stable: bool = True
    behind_schedule: bool = False
    attempts: int = 1


class SloSearch(Record):
    slo_ms: float
    max_rps: float
    flags: list[str] = Field(default_factory=list)
    probes: list[SloProbe] = Field(default_factory=list)
    closed_loop_best_rps: float | None = None


# --- collectors -------------------------------------------------------------------------------------


class Startup(Record):
    ready_s: list[float] = Field(default_factory=list)
    first_request_ms: list[float] = Field(default_factory=list)
    cold_first_request_ms: list[float] = Field(default_factory=list)
    warm_request_ms: list[float] = Field(default_factory=list)
    payload: str | None = None


class DependencyClosure(Record):
    total_bytes: float
    distributions: int


class ImageInfo(Record):
    size_bytes: float | None = None
    layers: int | None = None
    tools: list[str] = Field(default_factory=list)
    has_shell: bool = True


class Artifacts(Record):
    total_bytes: float | None = None
    files: list[dict[str, Any]] = Field(default_factory=list)


class Footprint(Record):
    kind: str | None = None
    dependency_closure: DependencyClosure | NotMeasured | None = None
    image: ImageInfo | NotMeasured | None = None
    fat_image: ImageInfo | NotMeasured | None = None
    artifacts: Artifacts | None = None


class Accuracy(Record):
    images: int = 0
    correct: int = 0
    errors: int = 0
    top1: float | None = None


class ServiceInfo(Record):
    """``info.json``: the service's own /info answer (any JSON) and where it was read."""

    base_url: str | None = None
    info: Any = None

    @property
    def model_hash(self) -> str | None:
        if not isinstance(self.info, dict):
            return None
        found = self.info.get("model_hash") or self.info.get("model", {}).get("hash")
        return str(found) if found else None

    @property
    def servers(self) -> int:
        """Requests served at once: workers x inference concurrency (1 when unknown)."""
        if not isinstance(self.info, dict):
            return 1
        try:
            return max(1, int(self.info.get("workers", 1)) * int(self.info.get("inference_concurrency", 1)))
        except (TypeError, ValueError):
            return 1


class StepError(Record):
    step: str = "?"
    error: str


class CoreSpeed(Record):
    """One core's calibration loops (bench.collectors.machine_speed): the median round of each, in ms."""

    core: int
    rounds: int = 0
    compute_ms: float
    memory_ms: float
    compute_range_ms: list[float] = Field(default_factory=list)
    memory_range_ms: list[float] = Field(default_factory=list)


class MachineSpeed(Record):
    """``raw/<variant>/machine-r<repeat>.json``: the machine's speed just before that load repeat started."""

    at_unix: float = 0.0
    took_s: float = 0.0
    steal_percent: float = math.nan
    cores: list[CoreSpeed]

    @property
    def compute_ms(self) -> float:
        return sum(core.compute_ms for core in self.cores) / max(len(self.cores), 1)

    @property
    def memory_ms(self) -> float:
        return sum(core.memory_ms for core in self.cores) / max(len(self.cores), 1)


# --- in-process jobs (written by bench.inprocess, read here) -------------------------------------------


LEGACY_FUSED_RUNTIME = "onnxruntime"  # raw files from before predictors declared fused_preprocessing


class InProcessResult(Record):
    kind: str | None = None
    runtime: str | None = None
    fused_preprocessing: bool | None = None  # the predictor's capability, when the job recorded it
    threads: int | None = None
    peak_rss_mb: float | None = None

    @property
    def preprocessing_in_graph(self) -> bool:
        if self.fused_preprocessing is not None:
            return self.fused_preprocessing
        return self.runtime == LEGACY_FUSED_RUNTIME


class Ceiling(InProcessResult):
    throughput_rps: float
    latency_ms: dict[str, float]
    stages_ms: dict[str, float]

    @property
    def median_ms(self) -> float:
        """Median milliseconds per request in the loop: THE in-process ms/request figure."""
        return self.latency_ms["p50"]


class Floor(InProcessResult):
    """``floor.json``: one repeat's decode of the payload alone and classifier network alone (medians, ms)."""

    iterations: int
    decode_ms: float
    network_ms: float
    decoded_size: list[int] = Field(default_factory=list)
    draft_min_side: int | None = None
    network_input: list[int] = Field(default_factory=list)  # the classifier's input shape, batch 1
    network_runtime: str | None = None

    @property
    def floor_ms(self) -> float:
        return self.decode_ms + self.network_ms


class SweepCell(Record):
    height: int
    width: int
    batch: int
    images_per_s: float
    latency_per_image_ms: float


class Sweep(InProcessResult):
    batch_sizes: list[int]
    image_sizes: list[list[int]]
    cells: list[SweepCell]


class OperatorTime(Record):
    operator: str
    total_ms_per_call: float


class OperatorProfile(InProcessResult):
    profiler: str
    top: list[OperatorTime]


class JpegDraftDigits(Record):
    images: int
    short_side: int
    quality: int
    top1_off: float
    top1_on: float
    top1_agreement: float
    max_abs_delta_p: float
    decode_ms_off: float
    decode_ms_on: float


class JpegDraftPhoto(Record):
    file: str
    size_off: list[int]
    size_on: list[int]
    decodes: int
    decode_off_ms: float
    decode_on_ms: float
    total_off_ms: float
    total_on_ms: float


class JpegDraft(InProcessResult):
    draft_min_side: int
    digits: JpegDraftDigits
    photos: list[JpegDraftPhoto]
