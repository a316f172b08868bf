"""`python -m bench compare` measures every variant into results/<timestamp>/; `report` re-renders one.

python -m bench compare [--profile quick|full] [--runner auto|local|compose] [--variants torch,onnx]
                        [--variants-file extra.toml ...] [--levels 1,8] [--duration 10] ...
python -m bench compare --profile full   # = make compare PROFILE=full: adds SLO search, in-process analyses
python -m bench compare --slo-search --sweep --profiler --jpeg-draft   # full's analyses, quick's load
python -m bench compare --payloads photo_small,photo_medium   # in-process ceiling and floor on both
python -m bench report results/latest
python -m bench variants    # the registry: built-in + BENCH_VARIANTS_FILES + --variants-file
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from bench.analysis.slo_search import DEFAULT_SLO_MS
from bench.collectors.accuracy import DEFAULT_MANIFEST
from bench.interrupt import StopSignals, event_of, exit_by_signal, stop_what_is_left
from bench.profiles import PROFILES, get_profile
from bench.registry import RegistryError, baseline_of, load_registry
from bench.results import RESULTS_ROOT
from bench.runners.base import StartupError

NO_BUDGET = "none"
BUDGET_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def _budget(text: str) -> float | str:
    """Seconds from ``45m`` / ``1.5h`` / ``2700s`` / ``45`` (minutes), or ``none``."""
    text = text.strip().lower()
    if text == NO_BUDGET:
        return NO_BUDGET
    unit = BUDGET_UNITS.get(text[-1:])
    try:
        value = float(text[:-1] if unit else text) * (unit or 60.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 45m, 1.5h, 2700s or none, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the budget must be positive")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError("concurrency levels must be positive integers")
    return values


def _name_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(
            "expected comma-separated payload names, e.g. photo_small,photo_medium"
        )
    return names


def _add_registry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--variants-file",
        type=Path,
        action="append",
        default=[],
        metavar="TOML",
        help="extra variants file (repeatable); BENCH_VARIANTS_FILES adds more",
    )
    parser.add_argument(
        "--no-builtin", action="store_true", help="leave out bench/variants.toml and external/*/variants.toml"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    compare = commands.add_parser("compare", help="run every variant and write one report")
    compare.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    compare.add_argument("--runner", choices=["auto", "local", "compose"], default="auto")
    compare.add_argument(
        "--variants",
        help="comma-separated names, in column order (default: the profile's set, see `profiles`)",
    )
    _add_registry_options(compare)
    compare.add_argument("--results-dir", type=Path, default=RESULTS_ROOT)
    compare.add_argument("--payload", help="image name in images/ or a path (default: the profile's)")
    compare.add_argument(
        "--payloads",
        type=_name_list,
        help="payloads of the in-process ceiling and floor, e.g. photo_small,photo_medium (the --payload one"
        " is always added; default: the profile's)",
    )
    compare.add_argument("--levels", type=_int_list, help="concurrency levels, e.g. 1,8")
    compare.add_argument("--duration", type=float, help="seconds measured per level")
    compare.add_argument("--requests", type=int, help="measured requests per level (duration becomes a cap)")
    compare.add_argument("--warmup", type=float, help="seconds of load discarded before each level")
    compare.add_argument("--repeats", type=int)
    compare.add_argument("--startup-runs", type=int)
    compare.add_argument("--cold-runs", type=int)
    compare.add_argument(
        "--budget",
        type=_budget,
        help="wall-clock budget the run is sized to: 45m, 1.5h, 2700s, or none (run the sizes as given);"
        " default: the profile's (full: 55m)",
    )
    compare.add_argument("--accuracy-manifest", type=Path, default=DEFAULT_MANIFEST)
    compare.add_argument("--no-pin", action="store_true", help="do not pin services and generator to cores")
    analyses = compare.add_argument_group("analyses (defaults from the profile)")
    analyses.add_argument("--open-rate", type=float, help="common open-loop rate, req/s (default: derived)")
    analyses.add_argument("--open-runs", type=int, help="open-loop runs per variant at that rate (0: none)")
    analyses.add_argument("--open-duration", type=float, help="seconds measured per open-loop run")
    analyses.add_argument("--ceiling-iterations", type=int, help="timed in-process requests per repeat")
    for flag, help_text in (
        ("slo-search", "search max RPS under the SLO"),
        ("sweep", "batch x image size sweep"),
        ("profiler", "top-operator profile"),
        ("jpeg-draft", "accuracy and decode effect of the JPEG_DRAFT shortcut"),
    ):
        analyses.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, help=help_text)
    analyses.add_argument("--slo-ms", type=float, help=f"the p99 SLO in ms (default {DEFAULT_SLO_MS:g})")
    analyses.add_argument("--slo-probes", type=int, help="probes of the bisection (bounds included)")
    analyses.add_argument("--slo-probe-duration", type=float, help="seconds measured per probe")

    report = commands.add_parser("report", help="regenerate the report files of a results directory")
    report.add_argument("run_dir", type=Path)

    variants = commands.add_parser("variants", help="list the registered variants")
    _add_registry_options(variants)
    return parser


def main(argv: list[str] | None = None) -> int:
    """0, 2 for a usage or startup error, or 128 + the number of the signal (SIGINT, SIGTERM, SIGHUP) that
    stopped the run once everything it started is stopped."""
    args = build_parser().parse_args(argv)
    with StopSignals():
        try:
            return _run_command(args)
        except KeyboardInterrupt as interrupt:  # run_compare has usually stopped what it started
            return stop_what_is_left(event_of(interrupt))


def _compare(args: argparse.Namespace) -> None:
    from bench.compare import CompareOptions, run_compare

    profile = get_profile(args.profile).with_overrides(
        payload=args.payload,
        payloads=args.payloads,
        concurrency_levels=args.levels,
        duration_s=args.duration,
        requests_per_level=args.requests,
        warmup_s=args.warmup,
        repeats=args.repeats,
        startup_runs=args.startup_runs,
        cold_runs=args.cold_runs,
        open_rate=args.open_rate,
        open_runs=args.open_runs,
        open_duration_s=args.open_duration,
        ceiling_iterations=args.ceiling_iterations,
        slo_search=args.slo_search,
        sweep=args.sweep,
        profiler=args.profiler,
        jpeg_draft=args.jpeg_draft,
        slo_ms=args.slo_ms,
        slo_probes=args.slo_probes,
        slo_probe_s=args.slo_probe_duration,
    )
    if args.budget is not None:
        profile = replace(profile, budget_s=None if args.budget == NO_BUDGET else args.budget)
    run_compare(
        CompareOptions(
            profile=profile,
            runner=args.runner,
            variant_names=[name.strip() for name in args.variants.split(",")] if args.variants else None,
            variants_files=args.variants_file,
            include_builtin=not args.no_builtin,
            results_root=args.results_dir,
            accuracy_manifest=args.accuracy_manifest,
            pin_cores=not args.no_pin,
        )
    )


def _run_command(args: argparse.Namespace) -> int:
    try:
        if args.command == "compare":
            _compare(args)
        elif args.command == "report":
            from rich.console import Console

            from bench.compare import keep_screenshot
            from bench.report import render_report
            from bench.report.render import to_markdown
            from bench.results import RunDir

            if not (args.run_dir / "run.json").is_file():
                print(f"{args.run_dir}: no run.json, not a results directory", file=sys.stderr)
                return 2
            table = render_report(args.run_dir)
            keep_screenshot(RunDir(args.run_dir), Console(stderr=True))
            print(to_markdown(table))
        else:
            variants = load_registry(args.variants_file, include_builtin=not args.no_builtin)
            baseline = baseline_of(variants).name
            for variant in variants:
                where = variant.url or f"port {variant.port}"
                mark = " (baseline)" if variant.name == baseline else ""
                print(
                    f"{variant.name}{mark}: {where}, {variant.payload_format} payload, from {variant.source}"
                )
    except (RegistryError, ValueError, FileNotFoundError, StartupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    exit_by_signal(main())
