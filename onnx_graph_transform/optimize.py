"""Offline ONNX Runtime graph optimization: optimize once at build time, load with optimizations off.

The default level is EXTENDED. ALL additionally applies layout optimizations that write NCHWc nodes specific
to the build machine's CPU (ORT warns the saved file may contain hardware-specific optimizations), which is
wrong for an artifact meant to be served elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import onnx
import onnxruntime as ort

from onnx_graph_transform.graph_info import node_counts

OptimizationLevel = Literal["basic", "extended", "all"]
DEFAULT_LEVEL: OptimizationLevel = "extended"
LEVELS: dict[str, ort.GraphOptimizationLevel] = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def optimize_offline(
    source: str | Path, destination: str | Path, level: OptimizationLevel = DEFAULT_LEVEL
) -> dict[str, object]:
    """Write the ORT-optimized graph of ``source`` to ``destination``; return what changed."""
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.optimized_model_filepath = str(destination)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    before = node_counts(onnx.load(str(source)))
    after = node_counts(onnx.load(str(destination)))
    return {
        "level": level,
        "nodes_before": sum(before.values()),
        "nodes_after": sum(after.values()),
        "node_counts_before": before,
        "node_counts_after": after,
        "bytes_before": Path(source).stat().st_size,
        "bytes_after": Path(destination).stat().st_size,
    }


def serving_session(path: str | Path, threads: int = 1) -> ort.InferenceSession:
    """How a pre-optimized artifact is meant to be loaded: no further graph optimization, CPU provider."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
