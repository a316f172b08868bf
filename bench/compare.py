"""One compare run, top to bottom: for each variant start -> ready -> measure -> stop; then the report.

Cold starts are measured first (one variant at a time). Load repeats are interleaved across variants
(A, B, A, B, ...) with a fresh service per repeat, so slow drift of a shared machine spreads over all
variants instead of favouring one.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.analyses import analysis_steps, common_open_rate, run_inprocess_jobs, run_service_analyses
from bench.budget import fit_to_budget
from bench.collectors.accuracy import DEFAULT_MANIFEST, measure_accuracy
from bench.collectors.machine_speed import measure_machine_speed
from bench.collectors.resources import summarize_samples, within_window
from bench.collectors.startup import measure_startup
from bench.collectors.sysinfo import collect_sysinfo
from bench.inprocess.approximation import approximating, run_approximation_gates
from bench.interrupt import CLEANUPS, SignalEvent, active_stop_signals, event_of, interruption_record
from bench.load.driver import LoadSpec, run_level
from bench.payloads import Payload, describe_payload, load_payload
from bench.probe import get_json
from bench.profiles import Profile
from bench.registry import Variant, baseline_of, in_profile, load_registry, select_variants
from bench.report import render_report
from bench.report.browser import capture_if_available
from bench.results import COMPLETE, INTERRUPTED, RESULTS_ROOT, RUNNING, RunDir, not_measured, write_json
from bench.runners import (
    SKIPPED_VARIANTS_FILE,
    ComposeRunner,
    ExternalRunner,
    LocalRunner,
    Runner,
    choose_runner,
    resolve_runner_name,
    runnable_variants,
)
from bench.runners.base import Service


@dataclass
class CompareOptions:
    profile: Profile
    runner: str = "auto"
    variant_names: list[str] | None = None
    variants_files: list[Path] = field(default_factory=list)
    include_builtin: bool = True
    results_root: Path = RESULTS_ROOT
    accuracy_manifest: Path = DEFAULT_MANIFEST
    pin_cores: bool = True


@dataclass(frozen=True)
class CorePlan:
    generator: list[int] | None
    service: list[int] | None
    note: str


def plan_cores(pin: bool) -> CorePlan:
    """Generator on the first usable core, services on the rest, where there are at least two."""
    cores = sorted(os.sched_getaffinity(0))
    if not pin:
        return CorePlan(None, None, "pinning disabled")
    if len(cores) < 2:
        return CorePlan(None, None, f"not pinned: only {len(cores)} usable core")
    return CorePlan([cores[0]], cores[1:], f"generator on core {cores[0]}, services on cores {cores[1:]}")


def make_runner(name: str, cores: CorePlan) -> Runner:
    if name == "compose":
        return ComposeRunner(service_cores=cores.service)
    return LocalRunner(service_cores=cores.service)


@dataclass
class Steps:
    """Runs the measuring steps: a failed one is written down for the report (its cells say why) instead of
    ending the whole run. Where the run is (step, variant, progress line) is what run.json names when a
    signal stops it."""

    run_dir: RunDir
    step: str = "setup"
    variant: str | None = None
    doing: str | None = None

    @contextmanager
    def run(self, variant: Variant, step: str) -> Iterator[None]:
        self.step, self.variant = step, variant.name
        try:
            yield
        except Exception as error:
            write_json(
                self.run_dir.variant_dir(variant.name) / "errors" / f"{step}.json",
                {"step": step, "error": str(error)},
            )
            Console(stderr=True).print(f"[red]{variant.name}: {step} failed:[/] {error}")

    def where(self) -> dict[str, str | None]:
        return {"step": self.step, "variant": self.variant, "doing": self.doing}


@dataclass
class _Run:
    """What every measuring step of one run reads."""

    profile: Profile
    registry: list[Variant]
    variants: list[Variant]
    payloads: dict[str, Payload]
    run_dir: RunDir
    cores: CorePlan
    main_runner: Runner
    external_runner: ExternalRunner
    accuracy_manifest: Path
    info: dict[str, Any]


def run_compare(options: CompareOptions, console: Console | None = None) -> RunDir:
    """The whole run; a stop signal or Ctrl-C (a KeyboardInterrupt, see bench/interrupt.py) stops what it
    started, marks run.json interrupted and propagates."""
    console = console or Console(stderr=True)
    run = _prepare(options, console)
    steps = Steps(run.run_dir)
    try:
        _measure_all(run, steps, console)
        steps.step, steps.variant, steps.doing = "report", None, "writing the report"
        _finish(run)
    except KeyboardInterrupt as stop:
        _mark_interrupted(run, steps, event_of(stop), console)
        raise
    keep_screenshot(run.run_dir, console)
    run.run_dir.refresh_latest()
    console.print(f"report: {run.run_dir.report_file('md')}")
    return run.run_dir


def _prepare(options: CompareOptions, console: Console) -> _Run:
    """Variants, runner, plan and payloads; the results directory with its first run.json."""
    profile = options.profile
    registry = load_registry(options.variants_files, include_builtin=options.include_builtin)
    # Named variants, else the profile's set: quick runs the seed's trio, full every strategy (`profiles`).
    variants = (
        select_variants(registry, options.variant_names)
        if options.variant_names
        else in_profile(registry, profile.name)
    )
    cores = plan_cores(options.pin_cores)
    runner_name, runner_reason = resolve_runner_name(options.runner, variants)
    main_runner, external_runner = make_runner(runner_name, cores), ExternalRunner()
    # A `requires` command missing or a failed `[variant.local] build` skips that variant, with the reason.
    variants, skipped = runnable_variants(variants, main_runner, external_runner)
    for skip in skipped:
        console.print(f"[yellow]skipped[/] {skip.name}: {skip.reason}")
    baseline = baseline_of(variants)
    plan = fit_to_budget(profile, variants, profile.budget_s)
    profile = plan.profile
    console.print(f"estimated duration: {plan.estimate.describe()}; {plan.note}")
    if not plan.fits:
        console.print("[yellow]the run will likely exceed its budget[/]")
    main_runner.prepare(variants)  # fails here, before a results directory exists, when it cannot run them
    payloads = {
        variant.name: load_payload(profile.payload, variant.payload_format, oip_input=variant.oip_input)
        for variant in variants
    }
    inprocess_payloads = [describe_payload(name, profile.payload) for name in profile.inprocess_payloads]
    run_dir = RunDir.create(options.results_root)
    write_json(run_dir.root / "raw" / SKIPPED_VARIANTS_FILE, [skip._asdict() for skip in skipped])
    run_info: dict[str, Any] = {
        "started_unix": time.time(),
        "status": RUNNING,
        "profile": profile.to_dict(),
        "plan": plan.to_dict(),
        "runner": {**main_runner.describe(), "chosen_because": runner_reason},
        "pinning": {"generator_cores": cores.generator, "service_cores": cores.service, "note": cores.note},
        "baseline": baseline.name,
        "variants": [variant.model_dump(mode="json") for variant in variants],
        "payloads": {name: {"file": str(p.source), "bytes": p.size} for name, p in payloads.items()},
        "inprocess_payloads": inprocess_payloads,
        "sysinfo": collect_sysinfo(),
    }
    write_json(run_dir.run_file, run_info)
    console.print(
        f"[bold]bench compare[/] -> {run_dir.root}  "
        f"({profile.name} profile, {runner_name} runner, {cores.note})"
    )
    if options.runner == "auto":
        console.print(f"runner: {runner_name} ({runner_reason})")
    return _Run(
        profile, registry, variants, payloads, run_dir, cores, main_runner, external_runner,
        options.accuracy_manifest, run_info,
    )  # fmt: skip


def _measure_all(run: _Run, steps: Steps, console: Console) -> None:
    profile, variants, payloads, run_dir = run.profile, run.variants, run.payloads, run.run_dir
    steps_per_variant = (
        profile.startup_runs + profile.cold_runs + profile.repeats * len(profile.concurrency_levels)
    )
    analysis_total = sum(analysis_steps(profile, variant.in_process is not None) for variant in variants)
    analysis_total += len(approximating(variants))
    with (
        closing(run.main_runner),  # the compose runner takes its project down, also after a failure
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("starting", total=steps_per_variant * len(variants) + analysis_total)

        def show(description: str, done: int = 0) -> None:
            steps.doing = description
            progress.update(task, advance=done, description=description)

        advance = partial(show, done=1)
        for variant in variants:
            runner = choose_runner(variant, run.main_runner, run.external_runner)
            show(f"{variant.name}: cold starts")
            with steps.run(variant, "startup"):
                startup = measure_startup(
                    runner,
                    variant,
                    payloads[variant.name],
                    runs=profile.startup_runs,
                    cold_runs=profile.cold_runs,
                    warm_requests=profile.warm_requests,
                    log_dir=run_dir.variant_dir(variant.name) / "logs",
                    on_step=partial(advance, f"{variant.name}: cold starts"),
                )
                write_json(run_dir.measurement(variant.name, "startup"), startup)
        for repeat in range(profile.repeats):
            for variant in variants:
                runner = choose_runner(variant, run.main_runner, run.external_runner)
                show(f"{variant.name}: repeat {repeat + 1}/{profile.repeats}")
                with steps.run(variant, f"load-r{repeat}"):
                    _measure_service(
                        runner, variant, repeat, profile, payloads[variant.name], run_dir, run.cores,
                        run.accuracy_manifest, advance,
                    )  # fmt: skip
        run.info["open_loop"] = _run_analyses(run, steps, advance)
        for variant in approximating(variants):  # every profile, in process: vs the variant it approximates
            with steps.run(variant, "approximation"):
                run_approximation_gates(
                    variant, run.registry, payloads[variant.name], run_dir, run.cores.service
                )
            advance(f"{variant.name}: approximation gates vs {variant.approximates}")


def _finish(run: _Run) -> None:
    run.info["status"] = COMPLETE
    run.info["finished_unix"] = time.time()
    run.info["plan"]["took_s"] = round(run.info["finished_unix"] - run.info["started_unix"], 1)
    write_json(run.run_dir.run_file, run.info)
    render_report(run.run_dir)


def _mark_interrupted(run: _Run, steps: Steps, event: SignalEvent, console: Console) -> None:
    """Stop what the unwinding left running, then write run.json as an interrupted run: the signal, when,
    what the run was doing, and what the cleanup stopped (a second call of the cleanup finds nothing)."""
    guard = active_stop_signals()
    stopped = CLEANUPS.run_all()
    run.info["status"] = INTERRUPTED
    run.info["finished_unix"] = time.time()
    run.info["plan"]["took_s"] = round(run.info["finished_unix"] - run.info["started_unix"], 1)
    run.info["interrupted"] = interruption_record(
        event,
        steps.where(),
        running=guard.running_at_signal if guard else [],
        later=guard.received[1:] if guard else [],
        cleanup={
            "took_s": round(run.info["finished_unix"] - event.at_unix, 2),  # from the signal
            "stopped_by_cleanup": stopped,  # what the unwinding's own stops had missed
            "left_running": CLEANUPS.pending(),
        },
    )
    write_json(run.run_dir.run_file, run.info)
    where = " of ".join(part for part in (steps.step, steps.variant) if part)
    console.print(
        f"[yellow]interrupted by {event.name}[/] during {where}: partial results in {run.run_dir.root}"
        " (results/latest still points at the last complete run)"
    )


def keep_screenshot(run_dir: RunDir, console: Console) -> None:
    """report.png: the page as headless Chromium shows it, when a browser is installed (a failure is said,
    never fatal: the report files are already written)."""
    try:
        check = capture_if_available(run_dir.report_file("html"), run_dir.report_file("png"))
    except Exception as error:
        console.print(f"[yellow]no screenshot of the report[/]: {error}")
        return
    if check is not None and check.requests:
        console.print(f"[yellow]report.html made network requests[/]: {check.requests}")


def _run_analyses(run: _Run, steps: Steps, advance: Callable[[str], None]) -> dict[str, Any]:
    """In-process jobs (no service running), then open loop at one common rate and the SLO search."""
    profile, payloads, run_dir = run.profile, run.payloads, run.run_dir
    for variant in run.variants:
        with steps.run(variant, "in-process"):
            run_inprocess_jobs(variant, payloads[variant.name], profile, run_dir, run.cores.service, advance)
    open_loop = common_open_rate(run_dir, run.variants, profile)
    if profile.open_runs or profile.slo_search:
        for variant in run.variants:
            runner = choose_runner(variant, run.main_runner, run.external_runner)
            with steps.run(variant, "open-loop"):
                run_service_analyses(
                    runner, variant, payloads[variant.name], profile, run_dir, open_loop["rate"],
                    run.cores.generator, advance,
                )  # fmt: skip
    return open_loop


def _measure_service(
    runner: Runner,
    variant: Variant,
    repeat: int,
    profile: Profile,
    payload: Payload,
    run_dir: RunDir,
    cores: CorePlan,
    accuracy_manifest: Path,
    advance: Callable[[str], None],
) -> None:
    write_json(run_dir.machine_speed_file(variant.name, repeat), _machine_speed(cores.service))
    service = runner.start_ready(
        variant, log_path=run_dir.variant_dir(variant.name) / "logs" / f"load-r{repeat}.log"
    )
    try:
        if repeat == 0:
            write_json(run_dir.measurement(variant.name, "info"), _info(service))
            write_json(
                run_dir.measurement(variant.name, "accuracy"), measure_accuracy(service, accuracy_manifest)
            )
            write_json(run_dir.measurement(variant.name, "footprint"), runner.footprint(variant, service))
        for users in profile.concurrency_levels:
            _measure_level(runner, service, repeat, users, profile, payload, run_dir, cores)
            advance(f"{variant.name}: repeat {repeat + 1}, {users} users")
    finally:
        runner.stop(service)


def _measure_level(
    runner: Runner,
    service: Service,
    repeat: int,
    users: int,
    profile: Profile,
    payload: Payload,
    run_dir: RunDir,
    cores: CorePlan,
) -> None:
    out_dir = run_dir.load_dir(service.variant.name, repeat, users)
    spec = LoadSpec(
        host=service.base_url,
        predict_path=service.variant.predict_path,
        payload_image=str(payload.source),
        payload_format=service.variant.payload_format.value,
        oip_input=service.variant.oip_input,
        users=users,
        warmup_s=profile.warmup_s,
        duration_s=profile.duration_s,
        max_requests=profile.requests_per_level,
        mode=profile.load_mode,
    )
    sampler = runner.resource_sampler(service)
    if isinstance(sampler, str):
        run_level(spec, out_dir, cores.generator)
        write_json(out_dir / "resources.json", not_measured(sampler))
        return
    sampler.start()
    try:
        window = run_level(spec, out_dir, cores.generator)
    finally:
        samples = sampler.stop()
    measured = within_window(samples, window["start_unix"], window["duration_s"])
    write_json(out_dir / "resources.json", {"samples": samples, "measured": summarize_samples(measured)})


def _machine_speed(cores: list[int] | None) -> dict[str, Any]:
    """The calibration before a load repeat, on the service cores (every usable core when unpinned); a probe
    that fails says why and the run goes on."""
    try:
        return measure_machine_speed(cores or sorted(os.sched_getaffinity(0)))
    except (OSError, ValueError, subprocess.SubprocessError) as error:
        return not_measured(f"calibration loops failed: {error}")


def _info(service: Service) -> dict[str, Any]:
    if service.variant.info_path is None:
        return not_measured("no info_path declared")
    try:
        return {"base_url": service.base_url, "info": get_json(service.url(service.variant.info_path))}
    except Exception as error:  # an external service may not implement /info; the run goes on
        return not_measured(f"{service.variant.info_path} failed: {error}")
