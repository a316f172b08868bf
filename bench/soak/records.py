"""The typed results a soak and a fault run write (``soak.json``), pydantic like ``bench.records.models``."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal["pass", "fail", "inconclusive"]


class SoakRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _null_is_not_a_number(cls, data: Any) -> Any:
        """bench.results.write_json writes NaN (a figure not computed) as null, strict JSON: read it back."""
        if not isinstance(data, dict):
            return data
        floats = {name for name, field in cls.model_fields.items() if field.annotation is float}
        return {key: math.nan if value is None and key in floats else value for key, value in data.items()}


class TreeSample(SoakRecord):
    """One reading of the service's whole process tree (sums over its processes)."""

    t_unix: float
    pids: list[int]
    rss_bytes: int
    fds: int = Field(description="entries of /proc/<pid>/fd, summed")
    socket_fds: int = Field(description="those of them that are sockets (one per client connection)")
    threads: int

    @property
    def other_fds(self) -> int:
        """Files, pipes, eventfds: what a request should never leave behind."""
        return self.fds - self.socket_fds


class SlopeFit(SoakRecord):
    """A least-squares line of one quantity against the requests served, over the judged window."""

    quantity: str
    unit: str
    per_10k_requests: float = Field(description="the slope, in `unit` per 10,000 requests")
    standard_error_per_10k: float = Field(
        default=math.nan, description="the block-median slope's standard error (NaN for a one-line fit)"
    )
    first: float
    last: float
    growth_over_window: float = Field(description="slope x the window's requests: what the fit says grew")
    later_half_growth: float = Field(description="the same fit over the later half of the window only")
    samples: int


class Check(SoakRecord):
    name: str
    status: Status
    value: float
    bound: float
    reason: str


class Verdict(SoakRecord):
    status: Status
    checks: list[Check]


class LoadSummary(SoakRecord):
    capacity_rps: float = Field(description="closed-loop throughput the rate is a share of")
    capacity_source: str
    rate_rps: float
    fraction: float
    duration_s: float
    requests: int
    successes: int
    failures: int
    errors: dict[str, int] = Field(default_factory=dict)
    achieved_rps: float
    behind_schedule: bool
    max_in_flight: int = Field(description="the generator's cap on outstanding requests (and connections)")
    peak_in_flight: int


class VariantSoak(SoakRecord):
    variant: str
    service_log: str | None = None
    load: LoadSummary
    warmup_s: float
    window_requests: int = Field(description="requests served inside the judged window (after warm-up)")
    rss: SlopeFit
    rss_raw_per_10k_requests: float = Field(
        description="one least-squares line through the whole window (steps and trims included), MB/10k"
    )
    other_fds: SlopeFit
    socket_fds: SlopeFit
    threads: SlopeFit
    processes: list[int] = Field(description="how many processes the tree held, first and last sample")
    verdict: Verdict
    samples: list[TreeSample]


class SkippedSoak(SoakRecord):
    variant: str
    reason: str


class RequestOutcome(SoakRecord):
    sent: float = Field(description="seconds from the load's start")
    done: float
    status: int | None = Field(description="None: no HTTP answer (connection refused or reset, timeout)")
    ok: bool
    failure: str | None = None
    error_code: str | None = Field(default=None, description="the error body's code (not_ready, ...)")

    @property
    def refused_not_ready(self) -> bool:
        """A 503 ``not_ready``: a worker without its model yet refused it before any work (retryable)."""
        return self.status == 503 and self.error_code == "not_ready"


class KillWorkerFault(SoakRecord):
    """SIGKILL of one worker of a multi-worker service under closed-loop load, every request accounted for.

    Times are seconds from the load's start."""

    variant: str
    concurrency: int = Field(description="client threads: at most this many requests in flight")
    worker_max_in_flight: int | None = Field(description="the service's per-worker MAX_IN_FLIGHT (/info)")
    loss_bound: int = Field(description="min(concurrency, worker_max_in_flight): the most the kill may fail")
    workers_before: list[int]
    workers_after: list[int]
    killed_pid: int
    new_pid: int | None
    killed_at: float
    dead_at: float = Field(description="the killed pid gone or a zombie: no request can reach it after this")
    new_worker_ready_at: float | None
    recovery_s: float | None = Field(description="kill -> the new worker reports itself ready")
    ready_recovered_at: float | None = Field(
        description="the new worker ready, then /ready 200 on every poll"
    )
    ready_recovery_s: float | None = Field(description="kill -> ready_recovered_at")
    recovery_bound_s: float
    startup_s: float = Field(description="the service's own cold start at launch (the bound's basis)")
    in_flight_at_kill: int = Field(description="requests sent before dead_at and still unanswered at kill")
    new_worker_served: bool = Field(description="a fresh connection reached the new worker (/info pid)")
    ready_statuses: dict[str, int] = Field(description="/ready answers polled during the outage, by status")
    requests: int
    failures: int = Field(description="every request without a prediction")
    lost: int = Field(description="failures other than not_ready refusals: connection errors, other statuses")
    lost_in_flight_at_kill: int
    lost_sent_after_kill: int = Field(description="lost though sent after the killed worker was gone")
    refused_not_ready: int = Field(
        description="503 not_ready: the replacement accepts connections while its model loads (serving_core "
        "loads it in a lifespan task) and refuses them, retryable, before any work"
    )
    refused_outside_replacement: int = Field(
        description="not_ready refusals sent before the kill or after recovery"
    )
    failures_after_recovery: int
    requests_after_recovery: int
    errors: dict[str, int]
    verdict: Verdict
    outcomes: list[RequestOutcome]


class SoakRun(SoakRecord):
    """``soak.json``: one soak (or fault) invocation."""

    kind: Literal["soak", "fault"]
    command: str
    started_unix: float
    finished_unix: float | None = None
    host_note: str
    plan: dict[str, float | int | str | list[str] | None]
    variants: list[VariantSoak] = Field(default_factory=list)
    faults: list[KillWorkerFault] = Field(default_factory=list)
    skipped: list[SkippedSoak] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict, description="variant -> what failed")
    status: Literal["running", "pass", "fail", "inconclusive", "error", "interrupted"] = "running"
    interrupted: dict[str, Any] | None = Field(
        default=None, description="the stop signal, what it stopped and the cleanup (bench.interrupt)"
    )
