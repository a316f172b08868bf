"""A short soak of the onnx service as ``python -m bench.soak --ci`` runs it: the service started by the
bench's local runner, its capacity measured, 40 s of open-loop load at 70 % of it, the process tree sampled
every second. Too short to judge an RSS slope against its bound (the verdict says inconclusive and why);
what it proves is the machinery: the tree was seen, every figure is finite, every check was computed.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.soak.plan import SoakPlan
from bench.soak.records import SoakRun
from bench.soak.session import run_soak
from bench.soak.verdict import COUNT_GROWTH_BOUND, RSS_BOUND_MB_PER_10K
from tests.fixtures.variants import ensure_startable, variant_named

pytestmark = [pytest.mark.live, pytest.mark.slow]

DURATION_S = 40.0
CHECKS = {
    "rss_slope", "other_fds_growth", "threads_growth", "sockets_bounded", "sockets_released", "errors",
    "process_tree_stable", "load_held",
}  # fmt: skip


def test_a_short_soak_samples_the_tree_and_computes_every_verdict(tmp_path: Path) -> None:
    variant = variant_named("onnx")
    assert variant is not None
    ensure_startable(variant)
    plan = SoakPlan(variants=["onnx"], duration_s=DURATION_S, sample_interval_s=1.0, capacity_s=6.0)
    root, run = run_soak(plan, results_root=tmp_path)

    assert not run.errors and not run.skipped, (run.errors, run.skipped)
    (soak,) = run.variants
    print(f"\n{(root / 'soak.md').read_text()}")
    # The sampler saw the service's process tree throughout: one uvicorn process, RSS, fds, threads.
    assert len(soak.samples) >= DURATION_S * 0.8
    assert all(sample.pids and sample.rss_bytes > 50e6 and sample.threads >= 1 for sample in soak.samples)
    assert all(sample.fds > sample.socket_fds >= 1 for sample in soak.samples)  # the listener, the model file
    assert max(sample.socket_fds for sample in soak.samples) > soak.samples[0].socket_fds  # the load's
    # Load at the planned share of a measured capacity, nothing failed, every request counted.
    assert soak.load.capacity_rps > 0 and soak.load.rate_rps == pytest.approx(0.7 * soak.load.capacity_rps)
    assert soak.load.requests == soak.load.successes > 0.5 * soak.load.rate_rps * DURATION_S
    assert 0 < soak.window_requests <= soak.load.requests
    # Finite figures and every check computed with its bound.
    fits = (soak.rss, soak.other_fds, soak.socket_fds, soak.threads)
    assert all(math.isfinite(fit.per_10k_requests) and math.isfinite(fit.growth_over_window) for fit in fits)
    assert math.isfinite(soak.rss_raw_per_10k_requests)
    checks = {check.name: check for check in soak.verdict.checks}
    assert set(checks) == CHECKS
    assert checks["rss_slope"].bound == RSS_BOUND_MB_PER_10K and checks["rss_slope"].status != "pass"
    assert checks["other_fds_growth"].bound == checks["threads_growth"].bound == COUNT_GROWTH_BOUND
    assert checks["errors"].status == checks["process_tree_stable"].status == "pass"
    assert checks["sockets_released"].status == "pass"
    assert soak.verdict.status in {"inconclusive", "fail"}
    # What it wrote: soak.json as the typed record, soak.md with the variant's row.
    assert SoakRun.model_validate_json((root / "soak.json").read_text()).variants[0].variant == "onnx"
    assert "| onnx |" in (root / "soak.md").read_text()
