"""The ASGI app: ``uvicorn openvino_serving.app:app``."""

from openvino_serving.predictor import OpenVinoPredictor
from openvino_serving.settings import OpenVinoServingSettings
from serving_core.app import create_app

app = create_app(OpenVinoPredictor, OpenVinoServingSettings())
