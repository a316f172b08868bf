"""``python -m onnx_serving``: uvicorn with host, port, workers and threads from the environment."""

from serving_core.server import serve
from serving_core.settings import OnnxServingSettings

if __name__ == "__main__":
    serve("onnx_serving.app:app", OnnxServingSettings())
