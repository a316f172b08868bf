"""The Notes under the table: how every figure was made, with the numbers read from their constants."""

from __future__ import annotations

from bench.analysis.slo_search import SLO_MISS_CONFIDENCE, SLO_PROBE_REQUESTS, allowed_over
from bench.analysis.stability import ALPHA, MIN_WINDOW_REQUESTS, STABLE_WINDOWS, THROUGHPUT_FLOOR
from bench.load.spec import MAX_IN_FLIGHT
from bench.records import RunRecords
from bench.records.derived import QUEUEING_MODEL
from bench.report.machine import steadiness
from bench.report.sections.approximation import approximation_notes
from bench.report.sections.open_loop import SLO_MODEL_SHARE


def notes(run: RunRecords) -> list[str]:
    info = run.info
    lines = [
        f"Every figure is the median over {info.profile.repeats} repeat(s) (a fresh service each)"
        " with [min-max]; startup rows summarize the individual starts.",
        "Latency percentiles are over successful requests of the measured window (linear interpolation);"
        " failures are counted separately.",
        f"×N is the ratio to the baseline ({info.baseline}) for that row;"
        " ↑ higher is better, ↓ lower is better.",
        f"Core pinning: {info.pinning.note}.",
        "Service RSS sums the process tree (shared pages of several workers count more than once).",
    ]
    machine = steadiness(run)
    if machine.probes:  # runs from before the calibration have none
        lines.append(
            "Machine: fixed single-threaded loops (a small matrix product, a copy larger than the caches)"
            " timed on the service cores before every load repeat, with no service running, and the host's"
            f" CPU steal during every load window: {machine.describe()}."
        )
    if info.runner.runner == "compose":
        lines.append(
            "Compose runner: service CPU and memory are the container's, from the engine's stats"
            " (memory = usage minus inactive page cache, as `docker stats` shows it); start to ready"
            f" is {info.runner.startup_clock or 'container start -> ready'}; the served image"
            " is the slim one, the fat (dev) image is inspected for comparison only."
        )
    lines.append(
        "Installed dependency closure: sizes of the files installed by each distribution reachable from the"
        " variant's requirements file, in the bench's virtual environment (not an image)."
    )
    return lines + analysis_notes(run)


def analysis_notes(run: RunRecords) -> list[str]:
    lines = [
        "In-process ceiling: the variant's own Predictor and serving_core's decode and response code in one"
        " process pinned to the service cores with the service's threads, warmup excluded; serving efficiency"
        " pairs each repeat's best closed-loop HTTP throughput with that repeat's ceiling.",
    ]
    if run.info.profile.open_runs:
        lines.append(
            "Open loop: one Locust scheduler sends on a seeded Poisson schedule (at most"
            f" {MAX_IN_FLIGHT} outstanding); latency runs from the scheduled send time, so a stalled service"
            " cannot hide behind a slowed generator (coordinated omission). Stability: windows of at least"
            f" {MIN_WINDOW_REQUESTS} expected requests; a run is unstable when, beyond the noise (p <"
            f" {ALPHA:g} per check) and by a practical margin, its last {STABLE_WINDOWS} windows' throughput"
            f" differs (Poisson tolerance, at least {THROUGHPUT_FLOOR:.0%}) or their latency does (the"
            " highest percentile the windows hold enough requests for), the window medians drift, or a window"
            " stalls (bench/analysis/stability.py). Queueing"
            f" model: {QUEUEING_MODEL} with S = the mean latency at concurrency 1 and c = workers x inference"
            " concurrency from /info, at most the service's cores."
        )
    if run.info.profile.slo_search:
        slo_ms = run.info.profile.slo_ms
        lines.append(
            f"SLO search: Poisson probes of at least {SLO_PROBE_REQUESTS} requests, each on a drained"
            f" service; a probe misses p99 <= {slo_ms:g} ms when a request failed, or when so many of its"
            f" requests took longer than {slo_ms:g} ms that a service whose p99 is exactly {slo_ms:g} ms"
            f" would put that many over it in under {1 - SLO_MISS_CONFIDENCE:.0%} of probes of that size"
            f" (one-sided binomial test; {allowed_over(SLO_PROBE_REQUESTS)} of {SLO_PROBE_REQUESTS} still"
            f" pass). A result under {SLO_MODEL_SHARE:.0%} of the {QUEUEING_MODEL} model's rate is flagged:"
            " slow requests that queueing does not explain decide it."
        )
    if any(records.jpeg_draft is not None for records in run.variants.values()):
        lines.append(
            "JPEG_DRAFT: serving_core's decode with the service's own draft rule off and on"
            " (JPEG_DRAFT=false/true), one process per variant; the digit JPEGs are made in memory (Pillow"
            " LANCZOS upscale), each decoded and predicted alone once per mode; photo rows alternate off"
            " and on rounds. The draft changes the pixels the model sees, so it is off by default."
        )
    return lines + approximation_notes(run)
