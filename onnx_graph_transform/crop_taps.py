"""The antialiased bilinear resize + centre crop as gathered taps, computed only where the crop needs them.

ONNX ``Resize`` (linear, antialias) resamples every row and column of the image, and the centre crop then
throws a good part of the result away; ONNX Runtime's antialias kernel is also scalar. This module builds
the same arithmetic from cheap, vectorized operators, per axis:

- from the axis length L and the resized length R (both read from the input shape at run time):
  scale = L / R, support = max(scale, 1), and for each of the ``crop`` output positions i kept by the crop,
  center = scale * (i + 0.5), first tap floor(center - support + 0.5) clipped to 0, end clipped to L;
- the taps of position i are the input indices [first_i, end_i), each weighted by the triangle filter
  max(0, 1 - |(tap - center + 0.5) / support|), normalized to sum 1 per position (``axis_blocks`` reads
  them in blocks so that an input index is not copied once per position that uses it).

These are exactly the sampling positions and weights of torch's ``interpolate(..., antialias=True)`` (the
separable Pillow-style filter, which ONNX Resize with antialias also follows), so resizing by taps and then
cropping equals cropping the full resize, for any image size and any crop. The image is sliced to the
window (rows and columns) the crop's taps reach, the rows are gathered (whole contiguous rows: cheap copies)
and reduced with a batched MatMul, then the columns the same way on the small result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


@dataclass
class GraphBuilder:
    """Nodes and constants of a subgraph, with every name under one prefix."""

    prefix: str
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)

    def constant(self, name: str, values: object, dtype: type) -> str:
        full = self.prefix + name
        self.initializers.append(numpy_helper.from_array(np.array(values, dtype=dtype), full))
        return full

    def op(self, op_type: str, inputs: list[str], output: str, **attributes: object) -> str:
        full = self.prefix + output
        self.nodes.append(helper.make_node(op_type, inputs, [full], name=full, **attributes))
        return full


@dataclass(frozen=True)
class AxisBlocks:
    """One axis's filter taps for the crop, in blocks: block k holds the rows (or columns) starting at output
    position k's first tap; each output position reads its own block and the next one."""

    window_start: str  # int64 [1]: the first input index any tap reads
    window_end: str  # int64 [1]: one past the last
    indices: str  # int64 [(crop + 1) * block]: input indices relative to window_start, block-major
    weights: (
        str  # float [crop + 1, 2, block]: per block, the weights for its own position and the previous one
    )
    block: str  # int64 [1]: indices per block


def axis_blocks(
    graph: GraphBuilder, axis: str, length: str, resized: str, offset: str, crop: int
) -> AxisBlocks:
    """Blocked taps of output positions ``offset .. offset + crop - 1`` of a ``length`` -> ``resized`` resize.

    ``length``, ``resized`` and ``offset`` are int64 [1] tensors; nodes are named ``<prefix><axis>/...``.

    Output position k's taps are [first_k, end_k), about 2 * scale long, and consecutive positions overlap
    by half: end_k is (up to float rounding) first_{k+2}. So split each position's taps at first_{k+1}: the
    part before it lies in block k, the rest in block k + 1. Every input index is then read once per block
    (a block is floor(support) + 2 long, about half the taps), instead of once per position that uses it; the
    weighted sums are one MatMul giving two rows per block. A tap lost where float rounding makes end_k exceed
    first_{k+2} sits where the triangle filter is exactly 0.
    """

    def op(op_type: str, inputs: list[str], output: str, **attributes: object) -> str:
        return graph.op(op_type, inputs, f"{axis}/{output}", **attributes)

    def const(name: str, values: object, dtype: type = np.float32) -> str:
        return graph.constant(f"{axis}/{name}", values, dtype)

    one, half, zero = const("one", [1.0]), const("half", [0.5]), const("zero", [0.0])
    tap_axis = const("tap_axis", [1], np.int64)
    flat = const("flat", [-1], np.int64)

    length_f = op("Cast", [length], "length", to=TensorProto.FLOAT)
    # Max(.., 1) so an empty side cannot divide by zero (the service refuses empty images before this).
    resized_f = op("Max", [op("Cast", [resized], "resized", to=TensorProto.FLOAT), one], "resized_safe")
    scale = op("Div", [length_f, resized_f], "scale")
    support = op("Max", [scale, one], "support")
    # Positions offset .. offset + crop: the last one only bounds the previous position's own part.
    kept = op(
        "Add",
        [const("positions", np.arange(crop + 1)), op("Cast", [offset], "offset", to=TensorProto.FLOAT)],
        "kept",
    )
    center = op(
        "Unsqueeze",
        [op("Mul", [op("Add", [kept, half], "kept_mid"), scale], "center_row"), tap_axis],
        "center",
    )
    lowest = op("Add", [op("Sub", [center, support], "lo"), half], "lo_mid")
    first = op("Min", [op("Max", [op("Floor", [lowest], "lo_floor"), zero], "first_low"), length_f], "first")
    highest = op("Add", [op("Add", [center, support], "hi"), half], "hi_mid")
    end = op("Min", [op("Floor", [highest], "hi_floor"), length_f], "end")

    def shifted(values: str, name: str, forward: bool, fill: str) -> str:
        """values[k + 1] (forward) or values[k - 1], the missing end filled from ``fill``'s matching row."""
        rows = (1, crop + 1) if forward else (0, crop)
        edge = (crop, crop + 1) if forward else (0, 1)
        body = op(
            "Slice",
            [values, const(f"{name}_s", [rows[0]], np.int64), const(f"{name}_e", [rows[1]], np.int64)],
            f"{name}_body",
        )
        pad = op(
            "Slice",
            [fill, const(f"{name}_ps", [edge[0]], np.int64), const(f"{name}_pe", [edge[1]], np.int64)],
            f"{name}_pad",
        )
        return op("Concat", [body, pad] if forward else [pad, body], name, axis=0)

    block_f = op("Add", [op("Floor", [support], "support_floor"), const("two", [2.0])], "block_f")
    tap = op(
        "Add",
        [
            first,
            op(
                "Range",
                [const("zero_scalar", 0.0), op("Squeeze", [block_f], "block_scalar"), const("step", 1.0)],
                "block_range",
            ),
        ],
        "tap",
    )

    def triangle(centers: str, name: str) -> str:
        distance = op(
            "Div",
            [op("Add", [op("Sub", [tap, centers], f"{name}_d"), half], f"{name}_dm"), support],
            f"{name}_distance",
        )
        return op(
            "Relu", [op("Sub", [one, op("Abs", [distance], f"{name}_abs")], f"{name}_1m")], f"{name}_tri"
        )

    def below(bound: str, name: str) -> str:
        return op("Cast", [op("Less", [tap, bound], f"{name}_lt")], f"{name}_mask", to=TensorProto.FLOAT)

    # Own part of position k: [first_k, min(first_{k+1}, end_k));
    # spill of position k - 1: [first_k, end_{k-1}).
    own_end = op("Min", [shifted(first, "first_next", True, end), end], "own_end")
    own = op("Mul", [triangle(center, "own"), below(own_end, "own")], "own_raw")
    # Block 0 spills nothing: its "previous end" is its own first index.
    previous_end = shifted(end, "end_previous", False, first)
    spill = op(
        "Mul",
        [triangle(shifted(center, "center_previous", False, center), "spill"), below(previous_end, "spill")],
        "spill_raw",
    )
    own_sum = op("ReduceSum", [own, tap_axis], "own_sum", keepdims=1)
    spill_sum = op("ReduceSum", [spill, tap_axis], "spill_sum", keepdims=1)
    # Position k's total = its own part (block k) + its spill (block k + 1); torch normalizes by the same sum.
    total = op("Add", [own_sum, shifted(spill_sum, "spill_next", True, spill_sum)], "total")
    # The virtual last position can sum to 0.
    total_safe = op("Max", [total, const("tiny", [1e-30])], "total_safe")
    own_w = op("Div", [own, total_safe], "own_w")
    spill_w = op("Div", [spill, shifted(total_safe, "total_previous", False, total_safe)], "spill_w")
    pair_shape = const("pair_shape", [crop + 1, 1, -1], np.int64)
    weights = op(
        "Concat",
        [op("Reshape", [own_w, pair_shape], "own_3d"), op("Reshape", [spill_w, pair_shape], "spill_3d")],
        "weights",
        axis=1,
    )

    real = (const("real_s", [0], np.int64), const("real_e", [crop], np.int64))
    window_start_f = op(
        "ReduceMin", [op("Slice", [first, *real], "first_real")], "window_start_f", keepdims=0
    )
    window_end_f = op("ReduceMax", [op("Slice", [end, *real], "end_real")], "window_end_f", keepdims=0)
    # Taps past the bounds above weigh 0; their index only has to stay inside the window.
    last = op("Max", [op("Sub", [window_end_f, one], "last"), window_start_f], "last_safe")
    inside = op("Max", [op("Min", [tap, last], "tap_high"), window_start_f], "tap_clipped")
    relative = op("Sub", [inside, window_start_f], "tap_relative")
    return AxisBlocks(
        window_start=op(
            "Reshape", [op("Cast", [window_start_f], "ws", to=TensorProto.INT64), flat], "window_start"
        ),
        window_end=op(
            "Reshape", [op("Cast", [window_end_f], "we", to=TensorProto.INT64), flat], "window_end"
        ),
        indices=op("Reshape", [op("Cast", [relative], "tap_int", to=TensorProto.INT64), flat], "indices"),
        weights=weights,
        block=op("Cast", [block_f], "block", to=TensorProto.INT64),
    )
