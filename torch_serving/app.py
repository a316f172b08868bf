"""The ASGI app: ``uvicorn torch_serving.app:app``."""

from serving_core.app import create_app
from serving_core.settings import TorchServingSettings
from torch_serving.predictor import TorchPredictor

app = create_app(TorchPredictor, TorchServingSettings())
