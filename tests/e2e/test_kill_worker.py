"""SIGKILL of one worker of onnx-2workers under load (``python -m bench.soak --fault kill-worker``): only the
requests that worker had in flight are lost, at most min(clients, its MAX_IN_FLIGHT); none sent after it
died; the supervisor starts a new worker pid that gets ready within the bound (a multiple of the service's
own cold start); /ready answers 200 again; every request after the recovery succeeds. The replacement
loads its model before it accepts connections, so nobody gets a ``not_ready`` 503 from it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak.faults import KillWorkerOptions
from bench.soak.records import SoakRun
from bench.soak.session import run_fault
from tests.fixtures.variants import ensure_startable, variant_named

pytestmark = [pytest.mark.live, pytest.mark.slow]


def test_sigkill_of_one_worker_loses_only_its_in_flight_requests_and_it_is_replaced(tmp_path: Path) -> None:
    variant = variant_named("onnx-2workers")
    assert variant is not None
    ensure_startable(variant)
    options = KillWorkerOptions(concurrency=4, before_s=2.0, after_s=3.0)
    root, run = run_fault("kill-worker", ["onnx-2workers"], options, results_root=tmp_path)

    assert not run.errors, run.errors
    (fault,) = run.faults
    print(f"\n{(root / 'soak.md').read_text()}")
    # The supervisor replaced the killed worker with a new pid; the other one served on throughout.
    assert len(fault.workers_before) == 2 and fault.killed_pid in fault.workers_before
    assert fault.new_pid is not None and fault.new_pid not in fault.workers_before
    assert set(fault.workers_after) == set(fault.workers_before) - {fault.killed_pid} | {fault.new_pid}
    assert fault.recovery_s is not None and fault.recovery_s <= fault.recovery_bound_s
    assert fault.ready_recovery_s is not None and fault.new_worker_served
    # Losses: only what was in flight at the kill, bounded by the clients and the worker's in-flight cap.
    assert fault.loss_bound == min(options.concurrency, fault.worker_max_in_flight or options.concurrency)
    assert fault.lost <= min(fault.loss_bound, fault.in_flight_at_kill)
    assert fault.lost == fault.lost_in_flight_at_kill and fault.lost_sent_after_kill == 0
    assert fault.refused_not_ready == 0 and fault.failures == fault.lost
    # After the recovery: every request succeeded, and there were enough of them to say so.
    assert fault.failures_after_recovery == 0 and fault.requests_after_recovery >= options.min_after_requests
    assert fault.verdict.status == "pass", fault.verdict.checks
    assert (
        SoakRun.model_validate_json((root / "soak.json").read_text()).faults[0].killed_pid == fault.killed_pid
    )
