"""Top operators of one prediction path, from the profiler the predictor declares (``operator_profiler``):
torch.profiler for PyTorch, ONNX Runtime's own profiling for ORT.

Each profiles the whole ``predict`` work of the variant (preprocessing and model) and saves the raw profile
(Chrome trace format, viewable in chrome://tracing or Perfetto) beside the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.results import not_measured
from serving_core.predictor import OperatorProfile, Predictor

TOP_OPERATORS = 15


def top_operators(profile: OperatorProfile) -> list[dict[str, Any]]:
    grand_total = sum(profile.total_us.values()) or 1.0
    ranked = sorted(profile.total_us.items(), key=lambda item: item[1], reverse=True)[:TOP_OPERATORS]
    return [
        {
            "operator": name,
            "total_ms_per_call": total / 1000.0 / profile.runs,
            "share": total / grand_total,
            "occurrences_per_call": profile.occurrences[name] / profile.runs,
        }
        for name, total in ranked
    ]


def profile_predictor(predictor: Predictor, image: np.ndarray, calls: int, out_dir: Path) -> dict[str, Any]:
    if predictor.operator_profiler is None:  # the report shows the reason where the profile would be
        return not_measured(f"no operator profiler for runtime {predictor.runtime!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    profile = predictor.profile_operators(image, calls, out_dir)
    return {
        "profiler": profile.profiler,
        "calls": profile.runs,
        "raw": profile.trace.name,
        "top": top_operators(profile),
    }
