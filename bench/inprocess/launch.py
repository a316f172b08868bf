"""Parent side of the in-process jobs: one pinned child process per variant and job, its result as a dict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.payloads import Payload, inprocess_dir, load_payload, payload_key
from bench.registry import Variant
from bench.results import RunDir, not_measured, write_json

EXTERNAL = "external service"
JOB_TIMEOUT_S = 900.0
PAYLOAD_JOBS = ("ceiling", "floor")  # measured on every in-process payload of the profile


def unavailable_reason(variant: Variant) -> str | None:
    """Why a variant has no in-process figures (it is not Python code the bench can load), else None."""
    if variant.in_process is None:
        return EXTERNAL
    return None


def run_inprocess(
    kind: str,
    variant: Variant,
    payload: Payload,
    out_dir: Path,
    cores: list[int] | None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one job (ceiling, sweep, profile, jpeg_draft) for the variant; writes ``<out_dir>/<kind>.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result_file = out_dir / f"{kind}.json"
    reason = unavailable_reason(variant)
    if reason is not None:
        write_json(result_file, not_measured(reason))
        return not_measured(reason)
    assert variant.in_process is not None
    job = {
        "kind": kind,
        "predictor": variant.in_process.predictor,
        "settings": variant.in_process.settings,
        "payload_image": str(payload.source),
        "payload_format": variant.payload_format.value,
        "params": params or {},
        "out_dir": str(out_dir),
    }
    job_file = write_json(out_dir / f"{kind}.job.json", job)
    env_additions = variant.local.render(port=0, root=variant.root)[1] if variant.local else {}
    log_path = out_dir / f"{kind}.log"
    with log_path.open("wb") as log:
        completed = subprocess.run(
            [sys.executable, "-m", "bench.inprocess", str(job_file), str(result_file)],
            cwd=variant.local_cwd,
            env={**os.environ, **env_additions},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=JOB_TIMEOUT_S,
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
            # Its own session: a signal to the bench's group reaches the bench, whose cleanup ends this job,
            # rather than killing it first and being written up as a failed step.
            start_new_session=True,
            check=False,
        )
    if completed.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"{variant.name}: in-process {kind} failed (exit {completed.returncode}):\n{tail}")
    return json.loads(result_file.read_text())


def run_payload_jobs(
    variant: Variant,
    payloads: Sequence[str],
    primary: str,
    run_dir: RunDir,
    repeat: int,
    cores: list[int] | None,
    params: dict[str, Any] | None = None,
) -> None:
    """One repeat of the per-payload jobs: for each payload its ceiling, then its floor, a fresh process each
    (an external variant gets their n/a files)."""
    for name in payloads:
        payload = load_payload(name, variant.payload_format, oip_input=variant.oip_input)
        out_dir = inprocess_dir(
            run_dir, variant.name, repeat, name, payload_key(name) == payload_key(primary)
        )
        for kind in PAYLOAD_JOBS:
            run_inprocess(kind, variant, payload, out_dir, cores, params)
