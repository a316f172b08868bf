"""``python -m bench.soak``: soak variants, or inject a fault.

    python -m bench.soak --variants onnx,torch,rust --duration 30m
    python -m bench.soak --variants onnx --ci                 # the short form (45 s)
    python -m bench.soak --fault kill-worker --variants onnx-2workers
    python -m bench.soak --rejudge results/soak/<stamp>     # the same samples, the current rules

Exit status 1 when a verdict fails or a variant could not be measured, else 0 (an inconclusive soak, too
short to judge its RSS slope, says so and exits 0 unless --strict).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench.interrupt import StopSignals, event_of, exit_by_signal, stop_what_is_left
from bench.soak.plan import (
    CI_DURATION_S,
    DEFAULT_FRACTION,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_SAMPLE_INTERVAL_S,
    PAYLOAD,
    SoakPlan,
    parse_duration,
)
from bench.soak.session import FAULTS, SOAK_ROOT, rejudge_run, run_fault, run_soak

CI_CAPACITY_S = 6.0
CI_SAMPLE_INTERVAL_S = 1.0


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    cli.add_argument("--variants", type=_names, default=["onnx", "torch", "rust"], help="comma-separated")
    cli.add_argument("--duration", type=parse_duration, default=None, help="per variant, e.g. 30m (default)")
    cli.add_argument("--ci", action="store_true", help=f"the short form: {CI_DURATION_S:.0f} s, 1 s samples")
    cli.add_argument(
        "--fraction", type=float, default=DEFAULT_FRACTION, help="share of the measured capacity"
    )
    cli.add_argument("--rate", type=float, default=None, help="req/s for every variant (no capacity run)")
    cli.add_argument(
        "--warmup", type=parse_duration, default=None, help="left out of the verdict (default: auto)"
    )
    cli.add_argument("--sample-interval", type=parse_duration, default=None)
    cli.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT)
    cli.add_argument("--payload", default=PAYLOAD)
    cli.add_argument(
        "--fault", choices=sorted(FAULTS), default=None, help="inject this fault instead of a soak"
    )
    cli.add_argument("--results-root", type=lambda text: __import__("pathlib").Path(text), default=SOAK_ROOT)
    cli.add_argument("--no-pin", action="store_true", help="do not pin generator and services to cores")
    cli.add_argument("--rejudge", type=lambda text: __import__("pathlib").Path(text), default=None,
                     help="judge a finished soak folder's samples again with the current rules")  # fmt: skip
    cli.add_argument("--strict", action="store_true", help="exit 1 on an inconclusive verdict too")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Like ``python -m bench``: SIGINT, SIGTERM and SIGHUP stop the services and load drivers it started
    (bench/interrupt.py) and end it with 128 + the signal's number."""
    args = parser().parse_args(argv)
    with StopSignals():
        try:
            return _run(args)
        except KeyboardInterrupt as interrupt:
            return stop_what_is_left(event_of(interrupt))


def _run(args: argparse.Namespace) -> int:
    if args.rejudge is not None:
        run = rejudge_run(args.rejudge)
    elif args.fault is not None:
        _, run = run_fault(args.fault, args.variants, results_root=args.results_root, pin=not args.no_pin)
    else:
        duration = args.duration or (CI_DURATION_S if args.ci else None)
        interval = args.sample_interval or (CI_SAMPLE_INTERVAL_S if args.ci else DEFAULT_SAMPLE_INTERVAL_S)
        plan = SoakPlan(
            variants=args.variants,
            **({"duration_s": duration} if duration is not None else {}),
            fraction=args.fraction,
            rate_rps=args.rate,
            warmup_s=args.warmup,
            sample_interval_s=interval,
            max_in_flight=args.max_in_flight,
            payload=args.payload,
            **({"capacity_s": CI_CAPACITY_S} if args.ci else {}),
            pin_cores=not args.no_pin,
        )
        _, run = run_soak(plan, results_root=args.results_root)
    failed = run.status in {"fail", "error"} or (args.strict and run.status == "inconclusive")
    return 1 if failed else 0


if __name__ == "__main__":
    exit_by_signal(main())
