"""Facts about an ONNX file that the manifest records: size, hash, opsets, node counts by operator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx

from model_zoo.card import sha256_of


def node_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Nodes of the main graph by operator type (``domain.op`` outside the default domain), sorted."""
    counts = Counter(
        f"{node.domain}.{node.op_type}" if node.domain else node.op_type for node in model.graph.node
    )
    return dict(sorted(counts.items()))


def describe_file(path: str | Path) -> dict[str, object]:
    """Everything the manifest says about one ONNX artifact."""
    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    counts = node_counts(model)
    return {
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "ir_version": model.ir_version,
        "opset": {entry.domain or "ai.onnx": entry.version for entry in model.opset_import},
        "inputs": [value.name for value in model.graph.input],
        "outputs": [value.name for value in model.graph.output],
        "nodes": sum(counts.values()),
        "node_counts": counts,
    }
