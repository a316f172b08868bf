"""Ray Serve in front of onnx_serving's predictor: each Serve replica runs serving_core's app (its routes,
middleware and request path) behind Ray's HTTP proxy, so what differs from onnx is Ray Serve alone.
"""
