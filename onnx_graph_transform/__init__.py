"""Turn a torch image classifier into a self-contained ONNX artifact that takes decoded uint8 images.

Pipeline (each step one module): ``export`` (torch -> ONNX) -> ``fuse`` (prepend the preprocessing subgraph,
append softmax) -> ``optimize`` (ONNX Runtime offline graph optimization) -> ``quantize`` (optional int8) ->
``validate`` (parity against the torch reference pipeline) -> ``manifest``; ``build`` orchestrates,
``__main__`` is the CLI.
"""

# Fixed artifact names (the serving side depends on them).
CLASSIFIER_FILE = "classifier.onnx"
FUSED_FILE = "fused.onnx"
OPTIMIZED_FILE = "fused.optimized.onnx"  # optimized for the build host's CPU (level ``all``): the served one
PORTABLE_FILE = "fused.portable.onnx"  # no CPU-specific layout (level ``extended``): for other machines
INT8_FILE = "fused.optimized.int8.onnx"
CARD_FILE = "model.card.json"
MANIFEST_FILE = "manifest.json"
VALIDATION_FILE = "validation.json"

# Graph interface of the fused artifact.
IMAGE_INPUT = "image"
PROBABILITIES_OUTPUT = "probabilities"
# Graph interface of the raw classifier export.
CLASSIFIER_INPUT = "input"
CLASSIFIER_OUTPUT = "logits"
