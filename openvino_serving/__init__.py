"""OpenVINO serving: decoded uint8 images go straight into the fused ONNX graph (preprocessing included),
compiled by OpenVINO for the CPU (no torch, no ONNX Runtime here).
"""
