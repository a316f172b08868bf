"""The ASGI app: ``uvicorn torch_serving.app:app``."""

from serving_core.app import create_app
from torch_serving.predictor import TorchPredictor
from torch_serving.settings import TorchServingSettings

app = create_app(TorchPredictor, TorchServingSettings())
