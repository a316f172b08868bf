"""Fuse preprocessing and softmax into any ONNX image classifier.

The transform works on ONNX graphs only, so it applies to any classifier whose single input is a float NCHW
batch with 3 channels and whose single output is ``[batch, classes]`` logits (or probabilities, if the graph
already ends in Softmax). It prepends a subgraph that reproduces ``model_zoo.preprocess`` in ONNX operators:

    image uint8 [N, H, W, 3] (any N, H, W)
      -> shorter side resized to ``resize_size``: sizes = (H, W) * resize_size // min(H, W) in int64, which is
         torchvision's rule (the shorter side becomes exactly resize_size, the longer side is truncated)
      -> centre crop offsets Round((size - crop) / 2) (ONNX Round is half to even, like Python)
      -> the antialiased bilinear resize, computed only for the crop (strategy ``taps``, ``crop_taps``): the
         window of the image the crop's filter taps reach is sliced and cast to float, then rows and columns
         are filtered by gathered taps and MatMul, with the filter's positions and weights computed from the
         input shape; the result is the crop in NCHW
      -> / 255 -> (x - mean) / std

and appends Softmax, exposing ``probabilities`` [N, classes].

Strategy ``resize`` is the straightforward graph kept for measurement: Cast the whole image, ONNX Resize
(linear, half_pixel, antialias=1, explicit sizes, NHWC), Slice the crop, Transpose. It resamples every row
and column that the crop then discards, in ORT's scalar antialias kernel. Both match the torch reference;
``python -m onnx_graph_transform speed`` times them side by side.

Why not Resize's ``keep_aspect_ratio_policy='not_smaller'``: it rounds the longer side instead of truncating
it and samples both axes with one shared scale, which is not what torchvision (and our training) did.

Zero-size images: divisors are clamped to 1 so a zero side can never trigger an integer division by zero
(which would kill the process rather than raise); rejecting empty images with a clear error is the service's
job. With ``taps`` the intermediate tensors scale with the crop's window (about crop / resize_size of the
shorter side, squared), not with the whole image; services still bound pixel count and aspect ratio.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, version_converter

from artifact_contract import IMAGE_INPUT, PROBABILITIES_OUTPUT
from model_zoo.card import Preprocessing
from onnx_graph_transform.crop_taps import AxisBlocks, GraphBuilder, axis_blocks

MIN_OPSET = 18  # Resize's antialias attribute arrived in opset 18
PREFIX = "preprocess/"
PREPROCESSED = PREFIX + "pixels"
POSTPROCESS_INPUT = "postprocess/logits"


class UnsupportedClassifierError(ValueError):
    """The ONNX graph is not a single-input NCHW float classifier this transform can fuse."""


def _default_opset(model: onnx.ModelProto) -> int:
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    shape = value.type.tensor_type.shape
    return [dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None) for dim in shape.dim]


def _data_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers (older IR versions list weights as inputs too)."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def _check_classifier(model: onnx.ModelProto, crop_size: int) -> None:
    inputs = _data_inputs(model)
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise UnsupportedClassifierError(
            f"expected one input and one output, got {len(inputs)} and {len(model.graph.output)}"
        )
    tensor_type = inputs[0].type.tensor_type
    if tensor_type.elem_type != TensorProto.FLOAT:
        raise UnsupportedClassifierError("the classifier input must be float32")
    dims = _dims(inputs[0])
    if len(dims) != 4 or dims[1] != 3:
        raise UnsupportedClassifierError(f"the classifier input must be NCHW with 3 channels, got {dims}")
    for dim in dims[2:]:
        if isinstance(dim, int) and dim not in (0, crop_size):
            raise UnsupportedClassifierError(
                f"the classifier input is fixed at {dims[2:]}, the crop is {crop_size}"
            )
    if isinstance(dims[0], int) and dims[0] > 0:
        raise UnsupportedClassifierError(
            f"the classifier batch dimension is fixed at {dims[0]}; export it dynamic"
        )
    output_dims = _dims(model.graph.output[0])
    if len(output_dims) != 2:
        raise UnsupportedClassifierError(f"the classifier output must be [batch, classes], got {output_dims}")


PREPROCESS_STRATEGIES = ("taps", "resize")
"""``taps`` (served): only the crop's source region, by gathered filter taps (``crop_taps``). ``resize``: ONNX
Resize of the whole image, then the crop; kept as the measured alternative (``python -m onnx_graph_transform
speed`` times both)."""


def _resize_geometry(graph: GraphBuilder, spec: Preprocessing) -> tuple[str, str, str]:
    """int64 tensors read from the input shape: ``hw`` [2], the shorter-side resize ``resized_hw`` [2] and
    the centre-crop ``offsets`` [2], rounded as torchvision does (longer side truncated, offsets half to
    even).
    """
    nhwc_shape = graph.op("Shape", [IMAGE_INPUT], "nhwc_shape")
    hw = graph.op(
        "Slice",
        [nhwc_shape, graph.constant("hw_starts", [1], np.int64), graph.constant("hw_ends", [3], np.int64)],
        "hw",
    )
    shorter = graph.op("ReduceMin", [hw], "shorter", keepdims=1)
    divisor = graph.op("Max", [shorter, graph.constant("one", [1], np.int64)], "divisor")
    scaled = graph.op("Mul", [hw, graph.constant("resize_size", [spec.resize_size], np.int64)], "hw_scaled")
    resized_hw = graph.op("Div", [scaled, divisor], "resized_hw")  # int64: truncates like torchvision's int()
    resized_float = graph.op("Cast", [resized_hw], "resized_hw_float", to=TensorProto.FLOAT)
    margins = graph.op(
        "Sub", [resized_float, graph.constant("crop", [float(spec.crop_size)], np.float32)], "margins"
    )
    half_margins = graph.op("Div", [margins, graph.constant("two", [2.0], np.float32)], "half_margins")
    offsets_float = graph.op("Round", [half_margins], "offsets_float")  # half to even, like Python's round
    offsets = graph.op("Cast", [offsets_float], "offsets", to=TensorProto.INT64)
    return hw, resized_hw, offsets


def _split(graph: GraphBuilder, pair: str, name: str) -> tuple[str, str]:
    first, second = graph.prefix + name + "_0", graph.prefix + name + "_1"
    graph.nodes.append(
        helper.make_node(
            "Split", [pair], [first, second], name=graph.prefix + "split_" + name, axis=0, num_outputs=2
        )
    )
    return first, second


def _blocked_pass(
    graph: GraphBuilder, name: str, data: str, blocks: AxisBlocks, batch: str, crop: int
) -> str:
    """``data`` [N, L, ...] float -> [N, crop, 1, rest]: the filter along axis 1, through its blocks."""
    crop_plus_one = graph.constant(f"{name}/blocks", [crop + 1], np.int64)
    gathered = graph.op("Gather", [data, blocks.indices], f"{name}/gathered", axis=1)  # [N, (crop+1)*B, ...]
    shape = graph.op(
        "Concat",
        [batch, crop_plus_one, blocks.block, graph.constant(f"{name}/rest", [-1], np.int64)],
        f"{name}/grouped_shape",
        axis=0,
    )
    grouped = graph.op("Reshape", [gathered, shape], f"{name}/grouped")  # [N, crop+1, B, rest]
    pairs = graph.op("MatMul", [blocks.weights, grouped], f"{name}/pairs")  # [N, crop+1, 2, rest]

    def part(block_range: tuple[int, int], row: int, label: str) -> str:
        starts = graph.constant(f"{name}/{label}_starts", [block_range[0], row], np.int64)
        ends = graph.constant(f"{name}/{label}_ends", [block_range[1], row + 1], np.int64)
        axes = graph.constant(f"{name}/{label}_axes", [1, 2], np.int64)
        return graph.op("Slice", [pairs, starts, ends, axes], f"{name}/{label}")

    # Position k = its own part (block k, row 0) + its spill into block k + 1 (row 1).
    return graph.op("Add", [part((0, crop), 0, "own"), part((1, crop + 1), 1, "spill")], f"{name}/done")


def _crop_by_taps(graph: GraphBuilder, spec: Preprocessing) -> str:
    """uint8 NHWC image -> float NCHW crop [N, 3, crop, crop], reading only what the crop's taps reach."""
    crop = spec.crop_size
    hw, resized_hw, offsets = _resize_geometry(graph, spec)
    height, width = _split(graph, hw, "hw")
    resized_h, resized_w = _split(graph, resized_hw, "resized_hw")
    offset_y, offset_x = _split(graph, offsets, "offsets")
    rows = axis_blocks(graph, "rows", height, resized_h, offset_y, crop)
    cols = axis_blocks(graph, "cols", width, resized_w, offset_x, crop)

    window = graph.op(
        "Slice",
        [
            IMAGE_INPUT,
            graph.op("Concat", [rows.window_start, cols.window_start], "window_starts", axis=0),
            graph.op("Concat", [rows.window_end, cols.window_end], "window_ends", axis=0),
            graph.constant("spatial_axes", [1, 2], np.int64),
        ],
        "window",
    )
    batch = graph.op(
        "Slice",
        [
            graph.op("Shape", [IMAGE_INPUT], "input_shape"),
            graph.constant("batch_starts", [0], np.int64),
            graph.constant("batch_ends", [1], np.int64),
        ],
        "batch",
    )
    crop_dim = graph.constant("crop_dim", [crop], np.int64)
    channels = graph.constant("channels", [3], np.int64)
    # Cast the window, not the gathered blocks: ORT's uint8 -> float Cast is the slow part, and the window is
    # the smaller tensor.
    window_float = graph.op("Cast", [window], "window_float", to=TensorProto.FLOAT)
    rows_done = _blocked_pass(graph, "rows", window_float, rows, batch, crop)  # [N, crop_y, 1, Ww*3]
    by_column = graph.op(
        "Reshape",
        [
            rows_done,
            graph.op(
                "Concat",
                [batch, crop_dim, graph.constant("rest", [-1], np.int64), channels],
                "rows_shape",
                axis=0,
            ),
        ],
        "rows_nhwc",
    )
    # Columns on the small result, with the column axis moved first so a block is a contiguous run of memory.
    columns_first = graph.op(
        "Transpose", [by_column], "columns_first", perm=[0, 2, 3, 1]
    )  # [N, Ww, 3, crop_y]
    cols_done = _blocked_pass(graph, "cols", columns_first, cols, batch, crop)  # [N, crop_x, 1, 3*crop_y]
    xcy = graph.op(
        "Reshape",
        [cols_done, graph.op("Concat", [batch, crop_dim, channels, crop_dim], "xcy_shape", axis=0)],
        "xcy",
    )  # [N, crop_x, 3, crop_y]
    return graph.op("Transpose", [xcy], "cropped_nchw", perm=[0, 2, 3, 1])


def _crop_by_resize(graph: GraphBuilder, spec: Preprocessing) -> str:
    """uint8 NHWC image -> float NCHW crop, by ONNX Resize of the whole image (NHWC) and a Slice.

    Resize and crop run in NHWC and only the cropped tensor is transposed: transposing the full-size image
    first cost about a third of the preprocessing time on a 1200x1800 photo in ONNX Runtime 1.31.
    """
    crop = spec.crop_size
    _, resized_hw, offsets = _resize_geometry(graph, spec)
    float_nhwc = graph.op("Cast", [IMAGE_INPUT], "float_nhwc", to=TensorProto.FLOAT)
    nhwc_shape = graph.op("Shape", [IMAGE_INPUT], "input_shape")
    batch = graph.op(
        "Slice",
        [
            nhwc_shape,
            graph.constant("batch_starts", [0], np.int64),
            graph.constant("batch_ends", [1], np.int64),
        ],
        "batch",
    )
    sizes = graph.op(
        "Concat", [batch, resized_hw, graph.constant("channels", [3], np.int64)], "sizes", axis=0
    )
    resized = graph.op(
        "Resize",
        [float_nhwc, "", "", sizes],
        "resized",
        mode="linear",
        coordinate_transformation_mode="half_pixel",
        antialias=1,
    )
    ends = graph.op("Add", [offsets, graph.constant("crop_int", [crop, crop], np.int64)], "ends")
    cropped = graph.op(
        "Slice", [resized, offsets, ends, graph.constant("spatial_axes", [1, 2], np.int64)], "cropped"
    )
    return graph.op("Transpose", [cropped], "cropped_nchw", perm=[0, 3, 1, 2])


def preprocessing_graph(
    spec: Preprocessing, opset: int, ir_version: int, strategy: str = "taps"
) -> onnx.ModelProto:
    """A standalone model: ``image`` uint8 [N, H, W, 3] -> ``preprocess/pixels`` float [N, 3, crop, crop]."""
    if strategy not in PREPROCESS_STRATEGIES:
        raise ValueError(
            f"unknown preprocessing strategy {strategy!r}; choose one of {PREPROCESS_STRATEGIES}"
        )
    graph = GraphBuilder(PREFIX)
    cropped = (_crop_by_taps if strategy == "taps" else _crop_by_resize)(graph, spec)
    # Scale and normalize, in the same order of operations as the torch reference.
    unit = graph.op("Div", [cropped, graph.constant("max_value", [255.0], np.float32)], "unit")
    mean = graph.constant("mean", np.reshape(spec.mean, (1, 3, 1, 1)), np.float32)
    std = graph.constant("std", np.reshape(spec.std, (1, 3, 1, 1)), np.float32)
    centred = graph.op("Sub", [unit, mean], "centred")
    graph.nodes.append(helper.make_node("Div", [centred, std], [PREPROCESSED], name=PREPROCESSED))
    crop = spec.crop_size
    model_graph = helper.make_graph(
        graph.nodes,
        "preprocess",
        [helper.make_tensor_value_info(IMAGE_INPUT, TensorProto.UINT8, ["batch", "height", "width", 3])],
        [helper.make_tensor_value_info(PREPROCESSED, TensorProto.FLOAT, ["batch", 3, crop, crop])],
        initializer=graph.initializers,
    )
    model = helper.make_model(
        model_graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def softmax_graph(num_classes: int | str | None, opset: int, ir_version: int) -> onnx.ModelProto:
    """A standalone model: logits [N, classes] -> ``probabilities`` [N, classes]."""
    classes = num_classes if num_classes else "classes"
    graph = helper.make_graph(
        [helper.make_node("Softmax", [POSTPROCESS_INPUT], [PROBABILITIES_OUTPUT], axis=-1)],
        "postprocess",
        [helper.make_tensor_value_info(POSTPROCESS_INPUT, TensorProto.FLOAT, ["batch", classes])],
        [helper.make_tensor_value_info(PROBABILITIES_OUTPUT, TensorProto.FLOAT, ["batch", classes])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)


def _ends_in_softmax(model: onnx.ModelProto) -> bool:
    output = model.graph.output[0].name
    producers = [node for node in model.graph.node if output in node.output]
    return bool(producers) and producers[0].op_type == "Softmax"


def _dedupe_opsets(model: onnx.ModelProto) -> None:
    """``merge_models`` can repeat the default domain; keep one entry per domain (the highest version)."""
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        versions[domain] = max(versions.get(domain, 0), entry.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in versions.items())


def _renamed_output(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """The classifier with its only output renamed (when it already produces probabilities)."""
    renamed = onnx.ModelProto()
    renamed.CopyFrom(model)
    old = renamed.graph.output[0].name
    for node in renamed.graph.node:
        node.input[:] = [name if value == old else value for value in node.input]
        node.output[:] = [name if value == old else value for value in node.output]
    renamed.graph.output[0].name = name
    return renamed


def fuse_preprocessing(
    classifier: onnx.ModelProto, spec: Preprocessing, strategy: str = "taps"
) -> onnx.ModelProto:
    """``classifier`` (float NCHW in, logits out) -> one graph from uint8 NHWC images to probabilities."""
    _check_classifier(classifier, spec.crop_size)
    if _default_opset(classifier) < MIN_OPSET:
        classifier = version_converter.convert_version(classifier, MIN_OPSET)
    opset, ir_version = _default_opset(classifier), classifier.ir_version
    # Stale intermediate shapes from the exporter are not needed and would only constrain the merged graph.
    classifier = onnx.ModelProto.FromString(classifier.SerializeToString())
    del classifier.graph.value_info[:]
    # Weights listed as graph inputs (old IR style) would become extra inputs of the fused graph.
    data_inputs = _data_inputs(classifier)
    del classifier.graph.input[:]
    classifier.graph.input.extend(data_inputs)

    classifier_input = data_inputs[0].name
    fused = compose.merge_models(
        preprocessing_graph(spec, opset, ir_version, strategy),
        classifier,
        io_map=[(PREPROCESSED, classifier_input)],
        prefix2="classifier/",
    )
    logits = fused.graph.output[0].name
    if _ends_in_softmax(classifier):
        fused = _renamed_output(fused, PROBABILITIES_OUTPUT)
    else:
        classes = _dims(classifier.graph.output[0])[1]
        fused = compose.merge_models(
            fused, softmax_graph(classes, opset, ir_version), io_map=[(logits, POSTPROCESS_INPUT)]
        )
    _dedupe_opsets(fused)
    fused.graph.name = "fused_" + (classifier.graph.name or "classifier")
    onnx.checker.check_model(fused, full_check=True)
    return fused
