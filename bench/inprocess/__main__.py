"""Child process of one in-process job: ``python -m bench.inprocess <job.json> <result.json>``.

The parent (``launch.py``) sets the variant's environment and CPU affinity; this process only loads the
predictor, runs the job and writes the result with its own peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from bench.inprocess.ceiling import run_ceiling
from bench.inprocess.floor import run_floor
from bench.inprocess.jpeg_draft import run_jpeg_draft
from bench.inprocess.predictions import run_jpeg_predictions
from bench.inprocess.profiler import profile_predictor
from bench.inprocess.sweep import resized_photo, run_sweep
from bench.inprocess.target import build_serving
from bench.payloads import load_payload
from bench.registry import PayloadFormat


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    predictor, settings = build_serving(job["predictor"], job["settings"])
    load_s = time.perf_counter() - started
    payload = load_payload(job["payload_image"], PayloadFormat(job["payload_format"]))
    params = job.get("params", {})
    kind = job["kind"]
    if kind == "ceiling":
        result = run_ceiling(predictor, settings, payload.body, payload.headers, **params)
    elif kind == "floor":
        result = run_floor(predictor, settings, payload.source.read_bytes(), **params)
    elif kind == "sweep":
        result = run_sweep(predictor, payload.source.read_bytes(), **params)
    elif kind == "profile":
        photo = payload.source.read_bytes()
        with_size = resized_photo(photo, *params.get("image_size", (480, 640)))
        result = profile_predictor(predictor, with_size, params.get("calls", 20), Path(job["out_dir"]))
    elif kind == "jpeg_draft":
        result = run_jpeg_draft(predictor, settings, **params)
    elif kind == "jpeg_predictions":
        result = run_jpeg_predictions(predictor, settings, **params)
    else:
        raise ValueError(f"unknown in-process job {kind!r}")
    return {
        "kind": kind,
        "runtime": predictor.runtime,
        # True: the graph preprocesses, so the "preprocess" stage only times the batch arrangement.
        "fused_preprocessing": predictor.fused_preprocessing,
        "versions": predictor.versions(),
        "threads": settings.threads,
        "inter_op_threads": settings.inter_op_threads,
        "cores": sorted(os.sched_getaffinity(0)),
        "load_s": load_s,
        "payload": {"file": str(payload.source), "bytes": payload.size, "format": job["payload_format"]},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
        **result,
    }


if __name__ == "__main__":
    job_file, result_file = Path(sys.argv[1]), Path(sys.argv[2])
    result_file.write_text(json.dumps(run_job(json.loads(job_file.read_text())), indent=2) + "\n")
