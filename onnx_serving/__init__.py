"""ONNX Runtime serving: decoded uint8 images go straight into the fused, offline-optimized graph (no torch
here).
"""
