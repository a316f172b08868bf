"""``python -m onnx_serving``: uvicorn with host, port, workers and threads from the environment."""

from onnx_serving.settings import OnnxServingSettings
from serving_core.server import serve

if __name__ == "__main__":
    serve("onnx_serving.app:app", OnnxServingSettings())
