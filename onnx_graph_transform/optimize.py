"""Offline ONNX Runtime graph optimization: optimize once at build time, load with optimizations off.

Two levels are built. ``all`` (the served artifact) adds the layout optimization: convolutions are
rewritten into NCHWc nodes (``com.microsoft.nchwc`` domain) blocked for the build machine's SIMD width, which
is what makes ORT several times faster than eager PyTorch on MobileNetV3 here; the saved graph is therefore
specific to the build host's CPU and the manifest records that CPU's fingerprint. ``extended`` (the portable
artifact) stops before the layout step: no hardware-specific nodes, runs anywhere, at about eager-PyTorch
speed.

Whether a saved graph is hardware specific is read from the graph, not assumed from the level: the NCHWc
rewrite is the level-3 step that depends on the CPU, and it leaves nodes only where it applied (the int8
graph's ConvInteger nodes are not rewritten, so its ``all`` build is byte-identical to ``extended``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import onnx
import onnxruntime as ort

from artifact_contract import NCHWC_DOMAIN
from artifact_contract.session import PROVIDERS
from onnx_graph_transform.graph_info import node_counts

OptimizationLevel = Literal["basic", "extended", "all"]
DEFAULT_LEVEL: OptimizationLevel = "all"
PORTABLE_LEVEL: OptimizationLevel = "extended"
LEVELS: dict[str, ort.GraphOptimizationLevel] = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
ORT_LOG_ERROR = 3


def nchwc_node_count(counts: dict[str, int]) -> int:
    """Nodes in the CPU-layout domain, from ``graph_info.node_counts`` output."""
    return sum(count for op, count in counts.items() if op.startswith(f"{NCHWC_DOMAIN}."))


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph``, including those of subgraphs (If/Loop/Scan bodies)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for subgraph in [attribute.g] if attribute.HasField("g") else attribute.graphs:
                yield from _nodes(subgraph)


def prune_unused_opsets(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the opset imports no node uses. ORT's saved model imports every domain it knows (nchwc among
    them), so only after pruning does importing ``com.microsoft.nchwc`` mean the graph has layout nodes.
    """
    used = {node.domain for node in _nodes(model.graph)}
    used |= {node.domain for function in model.functions for node in function.node}
    used |= {function.domain for function in model.functions}
    kept = [entry for entry in model.opset_import if entry.domain in used or entry.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    return model


def optimize_offline(
    source: str | Path, destination: str | Path, level: OptimizationLevel = DEFAULT_LEVEL
) -> dict[str, object]:
    """Write the ORT-optimized graph of ``source`` to ``destination``; return what changed."""
    options = ort.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    options.optimized_model_filepath = str(destination)
    if level == "all":
        # ORT's "may contain hardware specific optimizations" warning is expected: the manifest records it.
        options.log_severity_level = ORT_LOG_ERROR
    ort.InferenceSession(str(source), options, providers=PROVIDERS)
    optimized = prune_unused_opsets(onnx.load(str(destination)))
    onnx.save(optimized, str(destination))
    before = node_counts(onnx.load(str(source)))
    after = node_counts(optimized)
    nchwc_nodes = nchwc_node_count(after)
    return {
        "level": level,
        "hardware_specific": nchwc_nodes > 0,
        "nchwc_nodes": nchwc_nodes,
        "nodes_before": sum(before.values()),
        "nodes_after": sum(after.values()),
        "node_counts_before": before,
        "node_counts_after": after,
        "bytes_before": Path(source).stat().st_size,
        "bytes_after": Path(destination).stat().st_size,
    }
