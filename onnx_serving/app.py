"""The ASGI app: ``uvicorn onnx_serving.app:app``."""

from onnx_serving.predictor import OnnxPredictor
from onnx_serving.settings import OnnxServingSettings
from serving_core.app import create_app

app = create_app(OnnxPredictor, OnnxServingSettings())
