"""One compare run, top to bottom: for each variant start -> ready -> measure -> stop; then the report.

Cold starts are measured first (one variant at a time). Load repeats are interleaved across variants
(A, B, A, B, ...) with a fresh service per repeat, so slow drift of a shared machine spreads over all
variants instead of favouring one.
"""

from __future__ import annotations

import os
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
from bench.collectors.resources import summarize_samples, within_window
from bench.collectors.startup import measure_startup
from bench.collectors.sysinfo import collect_sysinfo
from bench.inprocess.approximation import approximating, run_approximation_gates
from bench.load.driver import LoadSpec, run_level
from bench.payloads import Payload, describe_payload, load_payload
from bench.probe import get_json
from bench.profiles import Profile
from bench.registry import Variant, baseline_of, in_profile, load_registry, select_variants
from bench.report import render_report
from bench.report.browser import capture_if_available
from bench.results import RESULTS_ROOT, RunDir, not_measured, write_json
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


def run_compare(options: CompareOptions, console: Console | None = None) -> RunDir:
    console = console or Console(stderr=True)
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

    steps_per_variant = (
        profile.startup_runs + profile.cold_runs + profile.repeats * len(profile.concurrency_levels)
    )
    analysis_total = sum(analysis_steps(profile, variant.in_process is not None) for variant in variants)
    analysis_total += len(approximating(variants))
    with (
        closing(main_runner),  # the compose runner takes its project down, also after a failure
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("starting", total=steps_per_variant * len(variants) + analysis_total)

        def advance(description: str) -> None:
            progress.update(task, advance=1, description=description)

        for variant in variants:
            runner = choose_runner(variant, main_runner, external_runner)
            progress.update(task, description=f"{variant.name}: cold starts")
            with failure_recorded(run_dir, variant, "startup"):
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
                runner = choose_runner(variant, main_runner, external_runner)
                progress.update(task, description=f"{variant.name}: repeat {repeat + 1}/{profile.repeats}")
                with failure_recorded(run_dir, variant, f"load-r{repeat}"):
                    _measure_service(
                        runner, variant, repeat, profile, payloads[variant.name], run_dir, cores,
                        options.accuracy_manifest, advance,
                    )  # fmt: skip
        run_info["open_loop"] = _run_analyses(
            variants, profile, payloads, run_dir, cores, main_runner, external_runner, advance
        )
        for variant in approximating(variants):  # every profile, in process: vs the variant it approximates
            with failure_recorded(run_dir, variant, "approximation"):
                run_approximation_gates(variant, registry, payloads[variant.name], run_dir, cores.service)
            advance(f"{variant.name}: approximation gates vs {variant.approximates}")

    run_info["finished_unix"] = time.time()
    run_info["plan"]["took_s"] = round(run_info["finished_unix"] - run_info["started_unix"], 1)
    write_json(run_dir.run_file, run_info)
    render_report(run_dir)
    keep_screenshot(run_dir, console)
    run_dir.refresh_latest()
    console.print(f"report: {run_dir.report_file('md')}")
    return run_dir


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


def _run_analyses(
    variants: list[Variant],
    profile: Profile,
    payloads: dict[str, Payload],
    run_dir: RunDir,
    cores: CorePlan,
    main_runner: Runner,
    external_runner: ExternalRunner,
    advance: Callable[[str], None],
) -> dict[str, Any]:
    """In-process jobs (no service running), then open loop at one common rate and the SLO search."""
    for variant in variants:
        with failure_recorded(run_dir, variant, "in-process"):
            run_inprocess_jobs(variant, payloads[variant.name], profile, run_dir, cores.service, advance)
    open_loop = common_open_rate(run_dir, variants, profile)
    if profile.open_runs or profile.slo_search:
        for variant in variants:
            runner = choose_runner(variant, main_runner, external_runner)
            with failure_recorded(run_dir, variant, "open-loop"):
                run_service_analyses(
                    runner, variant, payloads[variant.name], profile, run_dir, open_loop["rate"],
                    cores.generator, advance,
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


def _info(service: Service) -> dict[str, Any]:
    if service.variant.info_path is None:
        return not_measured("no info_path declared")
    try:
        return {"base_url": service.base_url, "info": get_json(service.url(service.variant.info_path))}
    except Exception as error:  # an external service may not implement /info; the run goes on
        return not_measured(f"{service.variant.info_path} failed: {error}")


@contextmanager
def failure_recorded(run_dir: RunDir, variant: Variant, step: str) -> Iterator[None]:
    """A failed step is written down for the report (its cells say why) instead of ending the whole run."""
    try:
        yield
    except Exception as error:
        write_json(
            run_dir.variant_dir(variant.name) / "errors" / f"{step}.json", {"step": step, "error": str(error)}
        )
        Console(stderr=True).print(f"[red]{variant.name}: {step} failed:[/] {error}")
