"""One soak or fault invocation over several variants: the registry, the local runner and its skips, the
results folder (``results/soak/<stamp>/``), ``soak.json`` and ``soak.md``."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from bench.compare import plan_cores
from bench.interrupt import CLEANUPS, active_stop_signals, event_of, interruption_record
from bench.registry import Variant, load_registry, select_variants
from bench.results import RESULTS_ROOT, RunDir, write_json
from bench.runners import ExternalRunner, LocalRunner, runnable_variants
from bench.soak.faults import KillWorkerOptions, kill_worker
from bench.soak.markdown import render_markdown
from bench.soak.plan import SoakPlan
from bench.soak.records import SkippedSoak, SoakRun
from bench.soak.run import rejudge, soak_variant

SOAK_ROOT = RESULTS_ROOT / "soak"
FAULTS: dict[str, str] = {"kill-worker": "SIGKILL one worker of a multi-worker service under load"}


def _host_note(cores_note: str) -> str:
    load1, load5, _ = os.getloadavg()
    return (
        f"Machine: {os.cpu_count()} cores shared with other jobs (load average {load1:.1f} / {load5:.1f} at "
        f"the start): the figures are noisy. Local runner; {cores_note}."
    )


def _prepare(
    names: list[str], pin: bool
) -> tuple[LocalRunner, list[Variant], list[SkippedSoak], str, list[int] | None]:
    cores = plan_cores(pin)
    runner = LocalRunner(service_cores=cores.service)
    chosen = select_variants(load_registry(), names)
    local = [v for v in chosen if v.local is not None and not v.is_external_url]
    skipped = [SkippedSoak(variant=v.name, reason="not started locally: no process tree to sample")
               for v in chosen if v not in local]  # fmt: skip
    runnable, skips = runnable_variants(local, runner, ExternalRunner())  # builds (cargo) run here, once
    skipped += [SkippedSoak(variant=skip.name, reason=skip.reason) for skip in skips]
    return runner, runnable, skipped, cores.note, cores.generator


def _finish(run: SoakRun, run_dir: RunDir, console: Console) -> SoakRun:
    run.finished_unix = time.time()
    verdicts = [s.verdict.status for s in run.variants] + [f.verdict.status for f in run.faults]
    if run.errors:
        run.status = "error"
    elif "fail" in verdicts:
        run.status = "fail"
    elif "inconclusive" in verdicts or not verdicts:
        run.status = "inconclusive"
    else:
        run.status = "pass"
    _write(run, run_dir)
    run_dir.refresh_latest()  # results/soak/latest, beside (not replacing) the compare runs' results/latest
    console.print(f"[bold]{run.kind}: {run.status}[/] -> {run_dir.root / 'soak.md'}")
    return run


def _write(run: SoakRun, run_dir: RunDir) -> None:
    write_json(run_dir.root / "soak.json", run.model_dump(mode="json"))
    (run_dir.root / "soak.md").write_text(render_markdown(run))


@contextmanager
def _marked_if_interrupted(
    run: SoakRun, run_dir: RunDir, console: Console
) -> Iterator[dict[str, str | None]]:
    """soak.json says ``running`` from the start (a SIGKILL leaves that behind) and ``interrupted`` when a
    stop signal or Ctrl-C unwinds the run: the signal, the variant it stopped, what the cleanup stopped. The
    interrupt propagates (``python -m bench.soak`` exits by it); results/soak/latest is left alone."""
    where: dict[str, str | None] = {"step": run.kind, "variant": None, "doing": None}
    _write(run, run_dir)
    try:
        yield where
    except KeyboardInterrupt as stop:
        event = event_of(stop)
        guard = active_stop_signals()
        stopped = CLEANUPS.run_all()
        run.finished_unix = time.time()
        run.status = "interrupted"
        run.interrupted = interruption_record(
            event,
            where,
            running=guard.running_at_signal if guard else [],
            later=guard.received[1:] if guard else [],
            cleanup={
                "took_s": round(run.finished_unix - event.at_unix, 2),
                "stopped_by_cleanup": stopped,
                "left_running": CLEANUPS.pending(),
            },
        )
        _write(run, run_dir)
        console.print(f"[yellow]{run.kind} interrupted by {event.name}[/]: partial results in {run_dir.root}")
        raise


def _each(
    run: SoakRun,
    variants: list[Variant],
    console: Console,
    step: Callable[[Variant], None],
    where: dict[str, str | None],
) -> None:
    for variant in variants:
        console.print(f"{run.kind} {variant.name} ...")
        where["variant"] = variant.name
        try:
            step(variant)
        except Exception as error:  # one variant's failure is recorded; the others still run
            run.errors[variant.name] = f"{type(error).__name__}: {error}"
            console.print(f"[red]{variant.name} failed:[/] {error}")


def run_soak(
    plan: SoakPlan, results_root: Path = SOAK_ROOT, console: Console | None = None
) -> tuple[Path, SoakRun]:
    console = console or Console(stderr=True)
    runner, variants, skipped, cores_note, generator = _prepare(plan.variants, plan.pin_cores)
    run_dir = RunDir.create(results_root)
    run = SoakRun(kind="soak", command=shlex.join(sys.argv), started_unix=time.time(),
                  host_note=_host_note(cores_note), plan=plan.to_dict(), skipped=skipped)  # fmt: skip
    for skip in skipped:
        console.print(f"[yellow]skipped[/] {skip.variant}: {skip.reason}")

    def one(variant: Variant) -> None:
        soak = soak_variant(variant, runner, plan, run_dir.variant_dir(variant.name), generator)
        run.variants.append(soak)
        write_json(run_dir.variant_dir(variant.name) / "soak.json", soak.model_dump(mode="json"))
        console.print(
            f"{variant.name}: {soak.verdict.status}; RSS {soak.rss.per_10k_requests:+.3f} MB/10k requests "
            f"over {soak.window_requests} requests; other fds {soak.other_fds.per_10k_requests:+.2f}, "
            f"threads {soak.threads.per_10k_requests:+.2f} per 10k"
        )

    with _marked_if_interrupted(run, run_dir, console) as where:
        _each(run, variants, console, one, where)
    return run_dir.root, _finish(run, run_dir, console)


def run_fault(
    fault: str,
    names: list[str],
    options: KillWorkerOptions | None = None,
    results_root: Path = SOAK_ROOT,
    pin: bool = True,
    console: Console | None = None,
) -> tuple[Path, SoakRun]:
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    console = console or Console(stderr=True)
    runner, variants, skipped, cores_note, _ = _prepare(names, pin)
    run_dir = RunDir.create(results_root)
    run = SoakRun(kind="fault", command=shlex.join(sys.argv), started_unix=time.time(),
                  host_note=_host_note(cores_note), plan={"fault": fault, "variants": names},
                  skipped=skipped)  # fmt: skip

    def one(variant: Variant) -> None:
        log_path = run_dir.variant_dir(variant.name) / "service.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        result = kill_worker(variant, runner, log_path, options)
        run.faults.append(result)
        console.print(
            f"{variant.name}: {result.verdict.status}; lost {result.lost} of {result.requests} "
            f"(bound {result.loss_bound}), {result.refused_not_ready} refused not_ready; recovery "
            f"{result.recovery_s} s "
            f"(bound {result.recovery_bound_s:.1f} s)"
        )

    with _marked_if_interrupted(run, run_dir, console) as where:
        _each(run, variants, console, one, where)
    return run_dir.root, _finish(run, run_dir, console)


def rejudge_run(root: Path, console: Console | None = None) -> SoakRun:
    """Judge a finished soak's samples again with the current rules; rewrites its soak.json and soak.md."""
    console = console or Console(stderr=True)
    run = SoakRun.model_validate_json((root / "soak.json").read_text())
    fields = set(SoakPlan.__dataclass_fields__)
    plan = SoakPlan(**{key: value for key, value in run.plan.items() if key in fields})  # type: ignore[arg-type]
    run_dir = RunDir(root)
    run.variants = [rejudge(soak, run_dir.variant_dir(soak.variant), plan) for soak in run.variants]
    run.command += f"  # re-judged: {shlex.join(sys.argv)}"
    return _finish(run, run_dir, console)
