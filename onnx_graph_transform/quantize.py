"""int8 artifact by dynamic quantization (weights int8 offline, activations quantized at run time).

The raw classifier is quantized, then fused and optimized like the fp32 one. Quantizing before fusion keeps
the preprocessing subgraph out of the quantizer's reach (it stays float, bit for bit the fp32 pipeline) and
hands the quantizer standard ONNX operators rather than ORT's fused contrib ops, which it does not know how to
quantize.

Dynamo exports carry stored value_info that makes the quantizer's shape inference fail ("inferred shape and
existing shape differ"), so it is cleared first; ``quant_pre_process`` then folds what ORT's basic optimizer
folds and re-infers shapes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

# Signed int8 weights (symmetric), unsigned int8 activations: the quantizer's default combination for CPU.
WEIGHT_TYPE = QuantType.QInt8
INTEGER_OPS = ("ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul")


def quantize_classifier(source: str | Path, destination: str | Path) -> None:
    """Dynamic int8 quantization of a float classifier graph (Conv, MatMul, Gemm weights)."""
    with tempfile.TemporaryDirectory(prefix="quantize-") as scratch:
        cleared = Path(scratch) / "cleared.onnx"
        prepared = Path(scratch) / "prepared.onnx"
        model = onnx.load(str(source))
        del model.graph.value_info[:]
        onnx.save(model, str(cleared))
        quant_pre_process(str(cleared), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(str(prepared), str(destination), weight_type=WEIGHT_TYPE)
