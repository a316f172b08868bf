"""Top operators of one prediction path: torch.profiler for PyTorch, ONNX Runtime's own profiling for ORT.

Both profile the whole ``predict`` work of the variant (preprocessing and model), and save the raw profile
(Chrome trace format, viewable in chrome://tracing or Perfetto) beside the summary.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from serving_core.predictor import Predictor

TOP_OPERATORS = 15


def _top(totals_us: dict[str, float], counts: dict[str, int], calls: int) -> list[dict[str, Any]]:
    grand_total = sum(totals_us.values()) or 1.0
    ranked = sorted(totals_us.items(), key=lambda item: item[1], reverse=True)[:TOP_OPERATORS]
    return [
        {
            "operator": name,
            "total_ms_per_call": total / 1000.0 / calls,
            "share": total / grand_total,
            "occurrences_per_call": counts[name] / calls,
        }
        for name, total in ranked
    ]


def profile_torch(predictor: Predictor, image: np.ndarray, calls: int, out_dir: Path) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    predictor.predict([image])
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(calls):
            predictor.predict([image])
    trace = out_dir / "torch_trace.json"
    profiler.export_chrome_trace(str(trace))
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for event in profiler.key_averages():
        if event.self_cpu_time_total > 0:
            totals[event.key] = float(event.self_cpu_time_total)
            counts[event.key] = int(event.count)
    return {"profiler": "torch.profiler (self CPU time)", "calls": calls, "raw": trace.name,
            "top": _top(totals, counts, calls)}  # fmt: skip


def profile_onnx(predictor: Predictor, image: np.ndarray, calls: int, out_dir: Path) -> dict[str, Any]:
    """A second session on the same model file with the predictor's own session options plus profiling."""
    import onnxruntime as ort

    served = predictor._session  # type: ignore[attr-defined]
    options = served.get_session_options()
    options.enable_profiling = True
    options.profile_file_prefix = str(out_dir / "ort_profile")
    session = ort.InferenceSession(
        str(predictor.loaded.artifact), sess_options=options, providers=served.get_providers()
    )
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(image[np.newaxis])}
    session.run(None, feed)
    for _ in range(calls):
        session.run(None, feed)
    raw = Path(session.end_profiling())
    trace = out_dir / "ort_trace.json"
    shutil.move(raw, trace)
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            operator = event.get("args", {}).get("op_name", "?")
            totals[operator] += float(event["dur"])
            counts[operator] += 1
    # The warmup run is in the trace too: per-call figures divide by every run.
    return {"profiler": "onnxruntime enable_profiling (kernel time by op type)", "calls": calls + 1,
            "raw": trace.name, "top": _top(totals, counts, calls + 1)}  # fmt: skip


def profile_predictor(predictor: Predictor, image: np.ndarray, calls: int, out_dir: Path) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    if predictor.runtime.startswith("pytorch"):
        return profile_torch(predictor, image, calls, out_dir)
    if predictor.runtime == "onnxruntime":
        return profile_onnx(predictor, image, calls, out_dir)
    raise ValueError(f"no operator profiler for runtime {predictor.runtime!r}")
