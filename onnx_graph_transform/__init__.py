"""Turn a torch image classifier into a self-contained ONNX artifact that takes decoded uint8 images.

Pipeline (each step one module): ``export`` (torch -> ONNX) -> ``fuse`` (prepend the preprocessing subgraph,
append softmax) -> ``optimize`` (ONNX Runtime offline graph optimization) -> ``quantize`` (optional int8) ->
``validate`` (parity against the torch reference pipeline) -> ``manifest``; ``build`` orchestrates,
``__main__`` is the CLI. The names it writes (files, tensors, the manifest) are ``artifact_contract``'s.
"""
