"""The artifact contract between the build (``onnx_graph_transform``) and whoever serves the artifacts.

File names, the fused graph's tensor names, the CPU-layout operator domain (this module), the manifest
(``manifest``), the CPU fingerprint that guards hardware-specific graphs (``cpu``) and how a fused artifact
is opened (``session``). It imports no project package, so the torch-free onnx image can ship it alone.
"""

# Artifact file names in a build directory.
CLASSIFIER_FILE = "classifier.onnx"
FUSED_FILE = "fused.onnx"
OPTIMIZED_FILE = "fused.optimized.onnx"  # optimized for the build host's CPU (level ``all``): the served one
PORTABLE_FILE = "fused.portable.onnx"  # no CPU-specific layout (level ``extended``): for other machines
INT8_FILE = "fused.optimized.int8.onnx"
CARD_FILE = "model.card.json"
MANIFEST_FILE = "manifest.json"
VALIDATION_FILE = "validation.json"

# Graph interface of the fused artifact: uint8 [N, H, W, 3] in, float32 [N, classes] out.
IMAGE_INPUT = "image"
PROBABILITIES_OUTPUT = "probabilities"
# Graph interface of the raw classifier export.
CLASSIFIER_INPUT = "input"
CLASSIFIER_OUTPUT = "logits"

# Operator domain of ONNX Runtime's CPU-specific layout nodes (level ``all``).
NCHWC_DOMAIN = "com.microsoft.nchwc"
