"""The ASGI app: ``uvicorn onnx_serving.app:app``."""

from onnx_serving.predictor import OnnxPredictor
from serving_core.app import create_app
from serving_core.settings import OnnxServingSettings

app = create_app(OnnxPredictor, OnnxServingSettings())
